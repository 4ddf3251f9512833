import type { ServedHandler } from '../pipeline/served-handler.ts';
import { type AdminDeps, actorId, actorOf, visibleKey } from './acting.ts';
import { checkActsOn } from './escalation.ts';
import { asApi } from './key-errors.ts';
import { shown } from './shapes.ts';

/**
 * `DELETE /v1/api-keys/{id}`: revokes the key (every replica refuses it within a second);
 * idempotent — revoking a revoked key answers the same, and records nothing new.
 */
export function revokeHandler(deps: AdminDeps): ServedHandler {
  return {
    body: 'none',
    async handle(request) {
      const target = await visibleKey(deps, request);
      checkActsOn(actorOf(request), target);
      const { record } = await asApi(() => deps.keys.revoke(target.id, actorId(request)));
      return { status: 200, body: shown(request, record) };
    },
  };
}
