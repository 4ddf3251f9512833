import { Counter, collectDefaultMetrics, Gauge, type Metric, Registry } from 'prom-client';
import type { KeyCacheObserver } from '../keys/key-cache.ts';
import { KEY_TYPES } from '../keys/key-record.ts';
import { FixedCounter, FixedHistogram, RequestCounter } from './scraped-metrics.ts';

/** The `decision` label of a finished request (metrics and the access line). */
export const DECISIONS = ['allow', 'unauthenticated', 'forbidden', 'invalid', 'error', 'limited'] as const;
export type DecisionLabel = (typeof DECISIONS)[number];

/**
 * Each decision's index in DECISIONS, by name: the proxy passes the index (the scraped
 * counters keep one plain number per index, no label lookup per request).
 */
export const DECISION = Object.freeze({ allow: 0, unauthenticated: 1, forbidden: 2, invalid: 3, error: 4, limited: 5 } as const satisfies Record<DecisionLabel, number>);
export type DecisionIndex = (typeof DECISION)[DecisionLabel];

/** How a finished request is counted: forwarded, or refused by its status (401, 403, 429 over a rate limit, another 4xx, 5xx). */
export function decisionOf(status: number, refused: boolean): DecisionIndex {
  if (!refused) return DECISION.allow;
  if (status === 401) return DECISION.unauthenticated;
  if (status === 403) return DECISION.forbidden;
  if (status === 429) return DECISION.limited;
  if (status < 500) return DECISION.invalid;
  return DECISION.error;
}

const KEY_CACHE_RESULTS = ['hit', 'negative_hit', 'miss'] as const;
const KEY_CACHE = Object.freeze({ hit: 0, negative_hit: 1, miss: 2 } as const satisfies Record<(typeof KEY_CACHE_RESULTS)[number], number>);
const STORE_RESULTS = ['ok', 'error'] as const;
const STORE = Object.freeze({ ok: 0, error: 1 } as const satisfies Record<(typeof STORE_RESULTS)[number], number>);

/** Figures that live elsewhere and are read when /metrics is scraped. */
export interface ScrapeSources {
  droppedLogLines?: () => number;
  cacheSizes?: () => Record<string, number>;
}

/** Every metric Keygate exports; names are part of the README's contract. */
export class Metrics {
  readonly registry = new Registry();
  readonly requests: RequestCounter;
  readonly latency: FixedHistogram;
  readonly keyCache: FixedCounter;
  readonly storeQuery: FixedHistogram;
  readonly upstreamErrors: Counter<'code'>;
  readonly lookups: Counter<'resource'>;
  readonly filteredItems: Counter<'route'>;
  readonly reloads: Counter<'result'>;
  readonly policyInfo: Gauge<'version'>;
  readonly inflight: Gauge;
  /** Requests being handled; read by the `inflight` gauge at scrape time. */
  inFlight = 0;
  /** Requests finished so far (the memory settle reads it to see that traffic stopped). */
  finished = 0;
  readonly logLinesDropped: Counter;
  readonly cacheEntries: Gauge<'cache'>;
  readonly rateLimited: Counter<'key_type'>;
  readonly rateLimitFallbacks: Counter;
  #sources: Required<ScrapeSources> = { droppedLogLines: () => 0, cacheSizes: () => ({}) };

  constructor() {
    const registers = [this.registry];
    // prom-client's default names (process_cpu_seconds_total, nodejs_eventloop_lag_seconds,
    // …) under one prefix, so the usual Node.js dashboards match after the prefix.
    collectDefaultMetrics({ register: this.registry, prefix: 'keygate_' });
    this.requests = this.#scraped(new RequestCounter('keygate_requests_total', 'Requests by decision, key type, route template and status', DECISIONS, [...KEY_TYPES, 'none']));
    this.latency = this.#scraped(
      new FixedHistogram(
        'keygate_request_duration_seconds',
        'Time from request to last byte written, by decision',
        'decision',
        DECISIONS,
        [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      ),
    );
    this.keyCache = this.#scraped(new FixedCounter('keygate_key_cache_total', 'Key cache lookups: hit (positive), negative_hit, miss', 'result', KEY_CACHE_RESULTS));
    // Scrape-time like the request metrics: a flood of unknown keys runs one store query per request.
    this.storeQuery = this.#scraped(
      new FixedHistogram('keygate_store_query_duration_seconds', 'Key store query latency', 'result', STORE_RESULTS, [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5]),
    );
    this.upstreamErrors = new Counter({ name: 'keygate_upstream_errors_total', help: 'Backend failures by error code', labelNames: ['code'], registers });
    this.lookups = new Counter({ name: 'keygate_attribute_lookups_total', help: 'Attribute lookups sent to the backend (cache misses)', labelNames: ['resource'], registers });
    this.filteredItems = new Counter({
      name: 'keygate_response_items_dropped_total',
      help: 'List items removed because the backend returned items the key may not see',
      labelNames: ['route'],
      registers,
    });
    this.rateLimited = new Counter({ name: 'keygate_rate_limited_total', help: "Requests refused with 429 RATE_LIMITED (the policy's rateLimits), by key type", labelNames: ['key_type'], registers });
    this.rateLimitFallbacks = new Counter({
      name: 'keygate_rate_limit_store_fallbacks_total',
      help: 'Rate-limit checks counted in this process because the shared store (--rate-limit-store) could not answer',
      registers,
    });
    this.reloads = new Counter({ name: 'keygate_policy_reloads_total', help: 'Policy reloads by result', labelNames: ['result'], registers });
    // max, not sum, across --workers: each version a worker runs is 1 however many run it.
    this.policyInfo = new Gauge({ name: 'keygate_policy_info', help: 'The policy version in force (value 1)', labelNames: ['version'], registers, aggregator: 'max' });
    const inFlight = (): number => this.inFlight;
    this.inflight = new Gauge({
      name: 'keygate_requests_in_flight',
      help: 'Requests being handled',
      registers,
      collect() {
        this.set(inFlight());
      },
    });
    const sources = (): Required<ScrapeSources> => this.#sources;
    this.cacheEntries = new Gauge({
      name: 'keygate_cache_entries',
      help: "Entries in Keygate's bounded caches: positive and negative key caches, attribute (owner) cache",
      labelNames: ['cache'],
      registers,
      collect() {
        for (const [cache, n] of Object.entries(sources().cacheSizes())) this.labels(cache).set(n);
      },
    });
    let reported = 0;
    this.logLinesDropped = new Counter({
      name: 'keygate_log_lines_dropped_total',
      help: 'Log lines dropped because stdout was not read fast enough',
      registers,
      collect() {
        const now = sources().droppedLogLines();
        if (now > reported) this.inc(now - reported);
        reported = now;
      },
    });
  }

  /** Where the scrape-time metrics (cache entries, dropped log lines) read their figures. */
  watch(sources: ScrapeSources): void {
    this.#sources = { ...this.#sources, ...sources };
  }

  /** The proxy's one call per finished request: no allocation, no label hashing. */
  requestFinished(decision: DecisionIndex, keyType: string, route: string, status: number, seconds: number): void {
    this.inFlight--;
    this.finished++;
    this.requests.inc(decision, keyType, route, status);
    this.latency.observe(decision, seconds);
  }

  #scraped<M extends { name: string }>(metric: M): M {
    this.registry.registerMetric(metric as unknown as Metric);
    return metric;
  }

  /** Counts each attribute lookup sent to the backend, by resource (a miss; a cache hit is never told). */
  lookupObserver(): (resource: string) => void {
    const lookups = this.lookups;
    return (resource) => lookups.labels(resource).inc();
  }

  keyCacheObserver(): KeyCacheObserver {
    const counts = this.keyCache.counts;
    const storeQuery = this.storeQuery;
    return {
      hit: (kind) => {
        counts[kind === 'positive' ? KEY_CACHE.hit : KEY_CACHE.negative_hit]!++;
      },
      miss: () => {
        counts[KEY_CACHE.miss]!++;
      },
      storeQuery: (seconds, success) => storeQuery.observe(success ? STORE.ok : STORE.error, seconds),
    };
  }
}
