import { MAX_GRACE_MS } from '../keys/key-service.ts';
import type { ServedHandler } from '../pipeline/served-handler.ts';
import { type AdminDeps, actingGuard, actingKey, actorId, actorOf, stillActive } from './acting.ts';
import { bodyFields, integerField } from './body.ts';
import { checkRotates } from './escalation.ts';
import { asApi } from './key-errors.ts';
import { shownWithSecret } from './shapes.ts';
import { visibleKey } from './visibility.ts';

/**
 * `POST /v1/api-keys/{id}/rotate` `{gracePeriodSeconds}` (0 to 604800, default 0): a new
 * secret for the same key; the current one keeps working until the grace ends (never
 * past the key's own expiry: `previousKeyExpiresAt` says when), then is refused.
 */
export function rotateHandler(deps: AdminDeps): ServedHandler {
  return {
    body: 'optional',
    async handle(request) {
      const f = bodyFields(request.body, ['gracePeriodSeconds']);
      const grace = integerField(f, 'gracePeriodSeconds', 0, MAX_GRACE_MS / 1000) ?? 0;
      const target = await visibleKey(deps, request);
      const actor = actorOf(request);
      checkRotates(actor, target);
      const then = await asApi(() => actingKey(deps, request));
      // The key as it is when the new secret is written, not as it was read: widened meanwhile
      // (by another key), its new secret would be more than the acting key's power.
      const guard = actingGuard(request, then, (now) => {
        stillActive(now);
        checkRotates(actor, now);
      });
      const rotated = await asApi(() => deps.keys.rotate(target.id, grace * 1000, actorId(request), guard));
      return { status: 200, body: { ...shownWithSecret(request, rotated.record, rotated.key), previousKeyExpiresAt: rotated.previousExpiresAt } };
    },
  };
}
