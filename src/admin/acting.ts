import { KeygateError } from '../errors/keygate-error.ts';
import type { KeyRecord } from '../keys/key-record.ts';
import type { KeyService } from '../keys/key-service.ts';
import type { ServedRequest } from '../pipeline/served-handler.ts';
import type { Actor } from './escalation.ts';

/** What the management API's handlers are built with. */
export interface AdminDeps {
  readonly keys: KeyService;
}

const EVRYTHNG_SHAPE = 'evrythng-access-token';

/** The route answers EVRYTHNG access tokens (`/accessTokens`) rather than Texture keys. */
export function evrythng(request: ServedRequest): boolean {
  return request.route.shape === EVRYTHNG_SHAPE;
}

/** The acting key, the policy that let it act, and the conditions of that grant. */
export function actorOf(request: ServedRequest): Actor {
  return { policy: request.policy, principal: request.principal, cap: request.decision.conditions ?? 'all' };
}

/**
 * Which keys a key with conditions sees: only those it made, and itself. Everything it
 * made was within its power when made (or last changed by it), and a filter on the
 * creator is an index range, so lists page and count in the store. A key whose grant has
 * no conditions sees every key (it still acts only on keys within its power).
 */
export function creatorScope(request: ServedRequest): string | undefined {
  return request.decision.conditions === null ? undefined : request.principal.id;
}

function isVisible(request: ServedRequest, record: KeyRecord): boolean {
  if (evrythng(request) && record.type !== 'access-token') return false;
  const scope = creatorScope(request);
  return scope === undefined || record.createdBy === scope || record.id === request.principal.id;
}

/** The key the route's `{id}` names, when the acting key may see it; otherwise 404 (a key it may not see does not exist to it). */
export async function visibleKey(deps: AdminDeps, request: ServedRequest): Promise<KeyRecord> {
  const id = request.decision.params.id ?? '';
  const record = await deps.keys.get(id);
  if (record === undefined || !isVisible(request, record)) throw new KeygateError('KEY_NOT_FOUND', { detail: `no key ${id} visible to ${request.principal.id}` });
  return record;
}

/** The actor as the audit trail names it. */
export function actorId(request: ServedRequest): string {
  return request.principal.id;
}
