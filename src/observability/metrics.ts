import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { KeyCacheObserver } from '../keys/key-cache.ts';

/** Figures that live elsewhere and are read when /metrics is scraped. */
export interface ScrapeSources {
  droppedLogLines?: () => number;
  cacheSizes?: () => Record<string, number>;
}

/** Every metric Keygate exports; names are part of the README's contract. */
export class Metrics {
  readonly registry = new Registry();
  readonly requests: Counter<'decision' | 'key_type' | 'route' | 'status'>;
  readonly latency: Histogram<'decision'>;
  readonly keyCache: Counter<'result'>;
  readonly storeQuery: Histogram<'result'>;
  readonly upstreamErrors: Counter<'code'>;
  readonly lookups: Counter<'resource'>;
  readonly filteredItems: Counter<'route'>;
  readonly reloads: Counter<'result'>;
  readonly policyInfo: Gauge<'version'>;
  readonly inflight: Gauge;
  readonly logLinesDropped: Counter;
  readonly cacheEntries: Gauge<'cache'>;
  #sources: Required<ScrapeSources> = { droppedLogLines: () => 0, cacheSizes: () => ({}) };
  readonly #children = new Map<string, { inc(): void }>();
  readonly #latencyChildren = new Map<string, { observe(v: number): void }>();

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'keygate_process_' });
    this.requests = new Counter({ name: 'keygate_requests_total', help: 'Requests by decision, key type, route template and status', labelNames: ['decision', 'key_type', 'route', 'status'], registers });
    this.latency = new Histogram({
      name: 'keygate_request_duration_seconds',
      help: 'Time from request to last byte written, by decision',
      labelNames: ['decision'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    });
    this.keyCache = new Counter({ name: 'keygate_key_cache_total', help: 'Key cache lookups: hit (positive), negative_hit, miss', labelNames: ['result'], registers });
    this.storeQuery = new Histogram({ name: 'keygate_store_query_duration_seconds', help: 'Key store query latency', labelNames: ['result'], buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5], registers });
    this.upstreamErrors = new Counter({ name: 'keygate_upstream_errors_total', help: 'Backend failures by error code', labelNames: ['code'], registers });
    this.lookups = new Counter({ name: 'keygate_attribute_lookups_total', help: 'Attribute lookups sent to the backend (cache misses)', labelNames: ['resource'], registers });
    this.filteredItems = new Counter({ name: 'keygate_response_items_dropped_total', help: 'List items removed because the backend returned items the key may not see', labelNames: ['route'], registers });
    this.reloads = new Counter({ name: 'keygate_policy_reloads_total', help: 'Policy reloads by result', labelNames: ['result'], registers });
    this.policyInfo = new Gauge({ name: 'keygate_policy_info', help: 'The policy version in force (value 1)', labelNames: ['version'], registers });
    this.inflight = new Gauge({ name: 'keygate_requests_in_flight', help: 'Requests being handled', registers });
    const sources = (): Required<ScrapeSources> => this.#sources;
    this.cacheEntries = new Gauge({
      name: 'keygate_cache_entries',
      help: 'Entries in Keygate\'s bounded caches: positive and negative key caches, attribute (owner) cache',
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

  /** Label children are cached per label set so the hot path does one map probe. */
  countRequest(decision: string, keyType: string, route: string, status: number): void {
    const id = decision + '|' + keyType + '|' + route + '|' + status;
    let child = this.#children.get(id);
    if (child === undefined) {
      child = this.requests.labels(decision, keyType, route, String(status));
      this.#children.set(id, child);
    }
    child.inc();
  }

  observeLatency(decision: string, seconds: number): void {
    let child = this.#latencyChildren.get(decision);
    if (child === undefined) {
      child = this.latency.labels(decision);
      this.#latencyChildren.set(decision, child);
    }
    child.observe(seconds);
  }

  keyCacheObserver(): KeyCacheObserver {
    const hit = this.keyCache.labels('hit');
    const negative = this.keyCache.labels('negative_hit');
    const miss = this.keyCache.labels('miss');
    const ok = this.storeQuery.labels('ok');
    const error = this.storeQuery.labels('error');
    return {
      hit: (kind) => (kind === 'positive' ? hit.inc() : negative.inc()),
      miss: () => miss.inc(),
      storeQuery: (seconds, success) => (success ? ok : error).observe(seconds),
    };
  }
}
