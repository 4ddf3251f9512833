import { KeygateError } from '../errors/keygate-error.ts';
import { hashKey } from '../keys/key-format.ts';
import { inactiveAt, type KeyRecord } from '../keys/key-record.ts';
import { checkActive, type KeyService } from '../keys/key-service.ts';
import { toPrincipal } from '../keys/principal.ts';
import type { WriteGuard } from '../keys/store.ts';
import { KEY_HEADER } from '../pipeline/authenticate.ts';
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

/** The actor as the audit trail names it. */
export function actorId(request: ServedRequest): string {
  return request.principal.id;
}

function changed(detail: string): KeygateError {
  return new KeygateError('ACTING_KEY_CHANGED', { detail });
}

function active(record: KeyRecord, principalEndsMs: number): boolean {
  const now = Date.now();
  return inactiveAt(record, now) === null && principalEndsMs > now;
}

/**
 * The acting key's row as the request begins, which must be the key it was authenticated
 * as (the key cache may hold it for up to its TTL after a change elsewhere): active, with
 * the power the principal has, and found by the very secret the request presents with that
 * secret's life as the principal has it — a secret rotated away meanwhile (now in a grace
 * period, or gone) or a key given an expiry acts as what it is now, not as the cache
 * remembers it. What the write then checks it against (actingGuard).
 */
export async function actingKey(deps: AdminDeps, request: ServedRequest): Promise<KeyRecord> {
  const p = request.principal;
  const secret = request.req.headers[KEY_HEADER];
  const record = typeof secret === 'string' ? await deps.keys.store.findByHash(hashKey(secret)) : undefined;
  if (record === undefined || record.id !== p.id || !active(record, p.expiresAtMs)) throw changed('the acting key is revoked, expired or gone, or its secret was rotated away');
  const same =
    record.type === p.type &&
    record.allowReferenceId === p.allowReferenceId &&
    toPrincipal(record).expiresAtMs === p.expiresAtMs &&
    JSON.stringify(record.roles) === JSON.stringify(p.roles) &&
    JSON.stringify(record.conditions) === JSON.stringify(p.conditions);
  if (!same) throw changed('the acting key was changed or rotated since it was authenticated');
  return record;
}

/**
 * Judged again inside the write (KeyStore's WriteGuard), where nothing can change any more:
 * the acting key must be the row `then` still — not revoked or expired, not updated,
 * rotated or revoked since (each moves its updatedAt) — and `onTarget` judges the key as it
 * will be written (or, for a rotation, as it is). A key revoked or narrowed while its
 * write waited for the store's lock (up to 5 s) so makes, widens or rotates nothing.
 */
export function actingGuard(request: ServedRequest, then: KeyRecord, onTarget: (target: KeyRecord) => void): WriteGuard {
  const endsMs = request.principal.expiresAtMs;
  return {
    actorId: then.id,
    check(now, target) {
      if (now === undefined || !active(now, endsMs)) throw changed('the acting key was revoked or expired while the request waited');
      if (now.updatedAt !== then.updatedAt) throw changed('the acting key was changed or rotated while the request waited');
      onTarget(target);
    },
  };
}

/** The key acted on, as it is inside the write: revoked or expired meanwhile, it is no longer changed (409 KEY_NOT_ACTIVE). */
export function stillActive(target: KeyRecord): void {
  checkActive(target, Date.now());
}
