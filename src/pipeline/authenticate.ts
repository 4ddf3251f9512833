import { sharedRefusal, type KeygateError } from '../errors/keygate-error.ts';
import { hashKey, parseKey } from '../keys/key-format.ts';
import type { KeyCache } from '../keys/key-cache.ts';
import { prefixFor } from '../keys/key-record.ts';
import type { Principal } from '../keys/principal.ts';

export const KEY_HEADER = 'texture-api-key';

const MISSING = sharedRefusal('KEY_MISSING');
const REPEATED = sharedRefusal('KEY_MALFORMED', 'header repeated');
const MALFORMED = sharedRefusal('KEY_MALFORMED');
const UNKNOWN = sharedRefusal('KEY_INVALID', 'unknown or revoked');
const EXPIRED = sharedRefusal('KEY_INVALID', 'expired');
const WRONG_PREFIX = sharedRefusal('KEY_INVALID', 'prefix does not match key type');

function admit(principal: Principal | undefined, prefix: string): Principal | KeygateError {
  if (principal === undefined) return UNKNOWN;
  if (principal.expiresAtMs <= Date.now()) return EXPIRED;
  // A key is only valid with the prefix its type was minted with (seed 002).
  if (prefixFor(principal.type) !== prefix) return WRONG_PREFIX;
  return principal;
}

/**
 * Stage 1: who is calling. Malformed keys are refused on their shape alone (prefix,
 * length, alphabet, checksum) so garbage never reaches the cache or the store.
 * A refusal (401) is returned, not thrown: a flood of bad keys is the case to make cheap.
 * Only a store failure throws (or rejects).
 */
export function authenticate(header: string | string[] | undefined, cache: KeyCache): Principal | KeygateError | Promise<Principal | KeygateError> {
  if (header === undefined || header === '') return MISSING;
  if (typeof header !== 'string') return REPEATED;
  const prefix = parseKey(header);
  if (prefix === undefined) return MALFORMED;
  const found = cache.lookup(hashKey(header));
  return found instanceof Promise ? found.then((p) => admit(p, prefix)) : admit(found, prefix);
}
