import { KeygateError } from '../errors/keygate-error.ts';
import { generatedReferenceId, mayChooseReferenceId } from '../keys/generated-reference.ts';
import { isKeyType, KEY_TYPES, type KeyRecord } from '../keys/key-record.ts';
import type { CreateInput } from '../keys/key-service.ts';
import type { ServedHandler, ServedRequest } from '../pipeline/served-handler.ts';
import { type AdminDeps, actingGuard, actingKey, actorId, actorOf, evrythng } from './acting.ts';
import { bodyFields, booleanField, stringField, stringListField } from './body.ts';
import { checkNoEscalation } from './escalation.ts';
import { asApi } from './key-errors.ts';
import { EVRYTHNG_NAMES, shownWithSecret } from './shapes.ts';

const TEXTURE_FIELDS = ['type', 'name', 'description', 'referenceId', 'roles', 'conditions', 'allowedOrigins', 'allowedRedirects', 'allowReferenceId', 'expiresAt'];
const EVRYTHNG_FIELDS = ['name', 'description', 'policies', 'conditions', 'expiresAt'];

/** A body field that may be null (for "none"), a value, or absent. */
function nullable(fields: Record<string, unknown>, name: string): string | null | undefined {
  return fields[name] === null ? null : stringField(fields, name);
}

function input(request: ServedRequest): CreateInput {
  const e = evrythng(request);
  const f = bodyFields(request.body, e ? EVRYTHNG_FIELDS : TEXTURE_FIELDS);
  const type = e ? 'access-token' : stringField(f, 'type', true)!;
  if (!isKeyType(type)) throw new KeygateError('INVALID_FIELD', { message: `type: must be one of ${KEY_TYPES.join(', ')}`, field: 'type' });
  const actor = request.principal;
  let referenceId = nullable(f, 'referenceId') ?? undefined;
  // The Connect flow's rule: a public connect key does not choose whose devices a key will see.
  if (!mayChooseReferenceId(actor)) {
    if (referenceId !== undefined) throw new KeygateError('REFERENCE_ID_NOT_ALLOWED', { field: 'referenceId', detail: `${actor.type} key ${actor.id} named referenceId` });
    if (type === 'scoped') referenceId = generatedReferenceId();
  }
  const expiresAt = nullable(f, 'expiresAt');
  return {
    type,
    referenceId,
    name: nullable(f, 'name'),
    description: nullable(f, 'description'),
    roles: stringListField(f, e ? 'policies' : 'roles'),
    conditions: f.conditions as CreateInput['conditions'],
    allowedOrigins: stringListField(f, 'allowedOrigins'),
    allowedRedirects: stringListField(f, 'allowedRedirects'),
    allowReferenceId: booleanField(f, 'allowReferenceId'),
    // A key that expires makes keys that expire with it, unless told an earlier time.
    expiresAt: expiresAt === undefined && actor.expiresAtMs !== Infinity ? new Date(actor.expiresAtMs).toISOString() : expiresAt,
  };
}

/** `POST /v1/api-keys` (and EVRYTHNG's `POST /accessTokens`): 201 with the secret, this once. */
export function createHandler(deps: AdminDeps): ServedHandler {
  return {
    body: 'json',
    async handle(request) {
      const names = evrythng(request) ? EVRYTHNG_NAMES : undefined;
      const actor = actorOf(request);
      const { record, key } = await asApi(async () => {
        const then = await actingKey(deps, request);
        const judge = (candidate: KeyRecord): void => checkNoEscalation(actor, candidate);
        return deps.keys.create(input(request), actorId(request), judge, actingGuard(request, then, judge));
      }, names);
      return { status: 201, body: shownWithSecret(request, record, key), headers: { location: `${request.target.path}/${record.id}` } };
    },
  };
}
