import type { KeyPatch } from '../keys/key-service.ts';
import type { ServedHandler, ServedRequest } from '../pipeline/served-handler.ts';
import { type AdminDeps, actingGuard, actingKey, actorId, actorOf, evrythng, stillActive } from './acting.ts';
import { bodyFields, booleanField, has, stringField, stringListField } from './body.ts';
import { checkNoEscalation } from './escalation.ts';
import { asApi } from './key-errors.ts';
import { EVRYTHNG_NAMES, shown } from './shapes.ts';
import { visibleKey } from './visibility.ts';

const TEXTURE_FIELDS = ['name', 'description', 'expiresAt', 'roles', 'conditions', 'allowedOrigins', 'allowedRedirects', 'allowReferenceId'];
const EVRYTHNG_FIELDS = ['name', 'description', 'expiresAt', 'policies', 'conditions'];
/** Fields a key object shows that no update changes: named as such rather than as unknown. */
const FIXED = ['id', 'type', 'referenceId', 'key', 'apiKey', 'keyPrefix', 'revoked', 'revokedAt', 'createdAt', 'updatedAt', 'lastUsedAt', 'createdBy'];

function nullable(fields: Record<string, unknown>, name: string): string | null | undefined {
  return fields[name] === null ? null : stringField(fields, name);
}

function patchOf(request: ServedRequest): KeyPatch {
  const e = evrythng(request);
  const f = bodyFields(request.body, e ? EVRYTHNG_FIELDS : TEXTURE_FIELDS, FIXED);
  const patch: Record<string, unknown> = {};
  if (has(f, 'name')) patch.name = nullable(f, 'name');
  if (has(f, 'description')) patch.description = nullable(f, 'description');
  if (has(f, 'expiresAt')) patch.expiresAt = nullable(f, 'expiresAt');
  const roles = stringListField(f, e ? 'policies' : 'roles');
  if (roles !== undefined) patch.roles = roles;
  if (has(f, 'conditions')) patch.conditions = f.conditions;
  const origins = stringListField(f, 'allowedOrigins');
  if (origins !== undefined) patch.allowedOrigins = origins;
  const redirects = stringListField(f, 'allowedRedirects');
  if (redirects !== undefined) patch.allowedRedirects = redirects;
  const allowReferenceId = booleanField(f, 'allowReferenceId');
  if (allowReferenceId !== undefined) patch.allowReferenceId = allowReferenceId;
  return patch as KeyPatch;
}

/**
 * `PATCH /v1/api-keys/{id}` (EVRYTHNG: `PUT /accessTokens/{id}`): changes name, description,
 * expiry, roles, conditions, origins and redirects. The key as it would be after must be
 * within the acting key's power — also when a key changes itself, so no key widens itself.
 */
export function updateHandler(deps: AdminDeps): ServedHandler {
  return {
    body: 'json',
    async handle(request) {
      const names = evrythng(request) ? EVRYTHNG_NAMES : undefined;
      const target = await visibleKey(deps, request);
      const { record } = await asApi(async () => {
        const patch = patchOf(request);
        const actor = actorOf(request);
        const then = await actingKey(deps, request);
        const { after } = await deps.keys.preview(target.id, patch);
        checkNoEscalation(actor, after);
        // Judged again inside the write, on the rows as they are then: another update that
        // landed since the preview (another request, another replica) is part of what is
        // judged, and so is a change to the acting key, or the target's revocation.
        const guard = actingGuard(request, then, (written) => {
          stillActive(written);
          checkNoEscalation(actor, written);
        });
        return deps.keys.update(target.id, patch, actorId(request), guard);
      }, names);
      return { status: 200, body: shown(request, record) };
    },
  };
}
