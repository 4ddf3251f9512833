import { createRequire } from 'node:module';
import type { Pool as UndiciPool } from 'undici';
import { KeygateError } from '../../errors/keygate-error.ts';

/**
 * undici's Pool alone. The package's entry point also loads its fetch, WebSocket, cache
 * and cookie code, and the cookies module, by touching `globalThis.Headers`, loads Node's
 * own bundled copy of undici besides: 6.0 MB of heap where the Pool takes 2.4. Every
 * full collection marks that heap again, and under a load of large answers Keygate runs
 * several a second (src/server/v8-flags.ts). The path is undici's own module (the package
 * has no `exports` map); the lockfile pins the version, and every forwarding test runs it.
 */
const Pool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as typeof UndiciPool;
type Pool = UndiciPool;

export interface UpstreamOptions {
  /** Time to the response headers; past it the client gets 504. */
  headersTimeoutMs: number;
  /** Longest silence while the body streams; past it the response is cut. */
  bodyTimeoutMs: number;
  connectTimeoutMs: number;
  connections: number;
}

export const DEFAULT_UPSTREAM: Readonly<UpstreamOptions> = Object.freeze({
  headersTimeoutMs: 10_000,
  bodyTimeoutMs: 30_000,
  connectTimeoutMs: 5_000,
  connections: 128,
});

/** The body timeout each pool was made with, for the bound on a client that takes none of an answer (forward.ts). */
const BODY_TIMEOUTS = new WeakMap<object, number>();

/**
 * How long a streamed answer may make no progress: `--upstream-body-timeout` of the pool
 * (the default for a dispatcher createUpstream did not make). undici runs its body timeout
 * only while it reads, never while the handler holds the answer paused for a client that
 * does not read: forward.ts holds that wait to the same bound.
 */
export function bodyTimeoutOf(upstream: object): number {
  return BODY_TIMEOUTS.get(upstream) ?? DEFAULT_UPSTREAM.bodyTimeoutMs;
}

/** One keep-alive pool per backend origin. */
export function createUpstream(origin: string, options: UpstreamOptions = DEFAULT_UPSTREAM): Pool {
  const pool = new Pool(origin, {
    connections: options.connections,
    headersTimeout: options.headersTimeoutMs,
    bodyTimeout: options.bodyTimeoutMs,
    connectTimeout: options.connectTimeoutMs,
    keepAliveTimeout: 4_000,
    pipelining: 1,
  });
  BODY_TIMEOUTS.set(pool, options.bodyTimeoutMs);
  return pool;
}

/** Maps an undici failure to 502 (could not reach or talk to the backend) or 504 (too slow). */
export function upstreamError(err: unknown): KeygateError {
  if (err instanceof KeygateError) return err;
  const code = (err as { code?: string }).code ?? '';
  const detail = `${code} ${(err as Error).message ?? String(err)}`.trim();
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new KeygateError('UPSTREAM_TIMEOUT', { detail, cause: err });
  }
  return new KeygateError('UPSTREAM_UNREACHABLE', { detail, cause: err });
}
