import type { Logger } from 'pino';
import { LocalCounters } from '../limits/local-counters.ts';
import { RateLimiter } from '../limits/rate-limiter.ts';
import type { Counters } from '../limits/verdict.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { TrustedHops } from '../pipeline/forwarding/trusted-hops.ts';

export interface RateLimiting {
  readonly limiter: RateLimiter;
  readonly counters: Counters;
  /** Counters held in this process (the cache-entries gauge). */
  readonly localSize: () => number;
}

/**
 * The rate limiter of one process: local counters, or Redis's with the local ones as the
 * fallback. Built whether or not the policy has `rateLimits` (a reload may add them); it
 * loads the Redis client and connects only when `--rate-limit-store` names one.
 */
export async function startRateLimiting(storeUrl: string | undefined, metrics: Metrics, logger: Logger, trustedHops: TrustedHops | null): Promise<RateLimiting> {
  const local = new LocalCounters();
  let counters: Counters = local;
  if (storeUrl !== undefined) {
    // Loaded only when used: the Redis client is 5.5 MB of heap that every full collection would mark.
    const { RedisCounters } = await import('../limits/redis-counters.ts');
    const shared = new RedisCounters(storeUrl, local, {
      down: (reason) => logger.warn({ rateLimitStore: 'redis', reason }, 'rate-limit store unreachable: counting in this process until it answers (limits hold per replica meanwhile)'),
      up: () => logger.info({ rateLimitStore: 'redis' }, 'rate-limit store answers again: counting there'),
      fellBack: () => metrics.rateLimitFallbacks.inc(),
    });
    shared.start();
    counters = shared;
  }
  const limiter = new RateLimiter({ counters, trustedHops, onLimited: (keyType) => metrics.rateLimited.labels(keyType).inc() });
  return { limiter, counters, localSize: () => local.size };
}
