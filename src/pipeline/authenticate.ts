import { type KeygateError, sharedRefusal } from '../errors/keygate-error.ts';
import type { KeyCache } from '../keys/key-cache.ts';
import { hashKey, type KeyPrefix, parseKey } from '../keys/key-format.ts';
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
  // Most keys never expire: no clock read for them.
  if (principal.expiresAtMs !== Infinity && principal.expiresAtMs <= Date.now()) return EXPIRED;
  // A key is only valid with the prefix its type was minted with (Texture's key format).
  if (prefixFor(principal.type) !== prefix) return WRONG_PREFIX;
  return principal;
}

/** The last well-formed key one client connection sent, with its prefix and hash. */
interface KeyMemo {
  key: string;
  prefix: KeyPrefix;
  hash: string;
}

/**
 * Keep-alive clients send the same key on every request of a connection, and checking its
 * shape (CRC-32) and hashing it (SHA-256) cost about 0.55 µs, a hundredth of a proxied
 * request. Both are pure functions of the key's text, so remembering the last answer per
 * connection can never change a verdict: the key is compared in full first. Revocation
 * and expiry are untouched (the cache is still asked every time). The key's text lives
 * as long as the connection, like the parser's own copy of the request.
 */
const MEMOS = new WeakMap<object, KeyMemo>();

/**
 * Stage 1: who is calling. Malformed keys are refused on their shape alone (prefix,
 * length, alphabet, checksum) so garbage never reaches the cache or the store.
 * A refusal (401) is returned, not thrown: a flood of bad keys is the case to make cheap.
 * Only a store failure throws (or rejects).
 */
export function authenticate(header: string | string[] | undefined, cache: KeyCache, connection?: object): Principal | KeygateError | Promise<Principal | KeygateError> {
  if (header === undefined || header === '') return MISSING;
  if (typeof header !== 'string') return REPEATED;
  const memo = connection === undefined ? undefined : MEMOS.get(connection);
  let prefix: KeyPrefix;
  let keyHash: string;
  if (memo !== undefined && memo.key === header) {
    prefix = memo.prefix;
    keyHash = memo.hash;
  } else {
    const parsed = parseKey(header);
    if (parsed === undefined) return MALFORMED;
    prefix = parsed;
    keyHash = hashKey(header);
    if (memo !== undefined) {
      memo.key = header;
      memo.prefix = prefix;
      memo.hash = keyHash;
    } else if (connection !== undefined) MEMOS.set(connection, { key: header, prefix, hash: keyHash });
  }
  const found = cache.lookup(keyHash);
  return found instanceof Promise ? found.then((p) => admit(p, prefix)) : admit(found, prefix);
}
