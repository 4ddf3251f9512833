import { KeygateError } from '../errors/keygate-error.ts';
import { hashKey, parseKey } from '../keys/key-format.ts';
import type { KeyCache } from '../keys/key-cache.ts';
import { prefixFor } from '../keys/key-record.ts';
import type { Principal } from '../keys/principal.ts';

export const KEY_HEADER = 'texture-api-key';

function admit(principal: Principal | undefined, prefix: string): Principal {
  if (principal === undefined) throw new KeygateError('KEY_INVALID', { detail: 'unknown or revoked' });
  if (principal.expiresAtMs <= Date.now()) throw new KeygateError('KEY_INVALID', { detail: 'expired' });
  // A key is only valid with the prefix its type was minted with (seed 002).
  if (prefixFor(principal.type) !== prefix) throw new KeygateError('KEY_INVALID', { detail: 'prefix does not match key type' });
  return principal;
}

/**
 * Stage 1: who is calling. Malformed keys are refused on their shape alone (prefix,
 * length, alphabet, checksum) so garbage never reaches the cache or the store.
 */
export function authenticate(header: string | string[] | undefined, cache: KeyCache): Principal | Promise<Principal> {
  if (header === undefined || header === '') throw new KeygateError('KEY_MISSING');
  if (typeof header !== 'string') throw new KeygateError('KEY_MALFORMED', { detail: 'header repeated' });
  const prefix = parseKey(header);
  if (prefix === undefined) throw new KeygateError('KEY_MALFORMED');
  const found = cache.lookup(hashKey(header));
  return found instanceof Promise ? found.then((p) => admit(p, prefix)) : admit(found, prefix);
}
