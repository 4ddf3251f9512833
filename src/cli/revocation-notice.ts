import { DEFAULT_KEY_CACHE } from '../keys/key-cache.ts';
import type { KeyStore } from '../keys/store.ts';

/** The longest `--key-cache-ttl` serve accepts (its options table): the documented revocation bound. */
const MAX_TTL_MS = 5_000;

function seconds(ms: number): string {
  return `${ms / 1000} s`;
}

/**
 * What `keys revoke` can truthfully promise. Running sidecars learn of the revocation
 * from the store (NOTIFY, or the SQLite change feed) and refuse the key at once; the
 * bound when that notice is lost is each one's own `--key-cache-ttl`, which this
 * process cannot see. It can see its own setting: when `--key-cache-ttl` or
 * KEYGATE_KEY_CACHE_TTL is given here (as it usually is for every process of one
 * deployment) it names that value, and otherwise the default, always with the ceiling
 * serve enforces.
 */
export function revocationNotice(id: string, kind: KeyStore['kind'], ttlMs: number | undefined): string {
  const ttl =
    ttlMs !== undefined
      ? `${seconds(ttlMs)} for a sidecar started with the same setting; at most ${seconds(MAX_TTL_MS)}`
      : `${seconds(DEFAULT_KEY_CACHE.positiveTtlMs)} by default, at most ${seconds(MAX_TTL_MS)}`;
  const bound = `within its --key-cache-ttl (${ttl})`;
  return kind === 'postgres'
    ? `Revoked ${id}. Running sidecars are notified now; if a notification is lost, each refuses it ${bound}.\n`
    : `Revoked ${id}. Running sidecars on this file notice within a second (they check it every 0.2 s); one that misses it refuses it ${bound}.\n`;
}
