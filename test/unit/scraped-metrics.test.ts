import { AggregatorRegistry, Histogram, type Metric, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/observability/metrics.ts';
import { FixedCounter, FixedHistogram, RequestCounter } from '../../src/observability/scraped-metrics.ts';

function registryWith(...metrics: object[]): Registry {
  const r = new Registry();
  for (const m of metrics) r.registerMetric(m as Metric);
  return r;
}

describe('scraped metrics (plain numbers on the hot path, prom-client format at scrape)', () => {
  it('a fixed histogram prints exactly what a prom-client histogram prints for the same observations', async () => {
    const bounds = [0.001, 0.01, 0.1, 1];
    const ours = new FixedHistogram('h_seconds', 'help text', 'decision', ['allow', 'forbidden', 'error'], bounds);
    const theirs = new Histogram({ name: 'h_seconds', help: 'help text', labelNames: ['decision'], buckets: bounds, registers: [] });
    const observations: Array<[number, number]> = [
      [0, 0.0005],
      [0, 0.001],
      [0, 0.05],
      [0, 7],
      [1, 0.2],
      [1, 0.2],
    ];
    for (const [i, v] of observations) {
      ours.observe(i, v);
      theirs.labels(['allow', 'forbidden', 'error'][i]!).observe(v);
    }
    const a = await registryWith(ours).metrics();
    const b = await registryWith(theirs).metrics();
    expect(a).toBe(b);
    // Cumulative buckets, +Inf, sum and count; "error" was never observed and is absent.
    expect(a).toContain('h_seconds_bucket{le="0.001",decision="allow"} 2');
    expect(a).toContain('h_seconds_bucket{le="+Inf",decision="allow"} 4');
    expect(a).toContain('h_seconds_count{decision="forbidden"} 2');
    expect(a).not.toContain('decision="error"');
  });

  it('a request counter keeps one cell per route, status, decision and key type, and decodes them at scrape', async () => {
    const c = new RequestCounter('req_total', 'requests', ['allow', 'unauthenticated', 'forbidden'], ['server', 'scoped', 'none']);
    c.inc(0, 'scoped', 'GET /v1/devices', 200);
    c.inc(0, 'scoped', 'GET /v1/devices', 200);
    c.inc(2, 'scoped', 'GET /v1/sites', 403);
    c.inc(1, 'none', 'GET /v1/devices', 401);
    c.inc(0, 'some-future-type', 'GET /v1/devices', 599);
    const text = await registryWith(c).metrics();
    expect(text).toContain('req_total{decision="allow",key_type="scoped",route="GET /v1/devices",status="200"} 2');
    expect(text).toContain('req_total{decision="forbidden",key_type="scoped",route="GET /v1/sites",status="403"} 1');
    expect(text).toContain('req_total{decision="unauthenticated",key_type="none",route="GET /v1/devices",status="401"} 1');
    expect(text).toContain('req_total{decision="allow",key_type="some-future-type",route="GET /v1/devices",status="599"} 1');
    expect(text).toContain('# TYPE req_total counter');
    c.reset();
    expect(await registryWith(c).metrics()).not.toContain('req_total{');
  });

  it('a fixed counter prints every label value, zero or not, and resets', async () => {
    const c = new FixedCounter('cache_total', 'lookups', 'result', ['hit', 'miss']);
    c.counts[0]! += 3;
    const text = await registryWith(c).metrics();
    expect(text).toContain('cache_total{result="hit"} 3');
    expect(text).toContain('cache_total{result="miss"} 0');
    c.reset();
    expect(await registryWith(c).metrics()).toContain('cache_total{result="hit"} 0');
  });

  // --workers: the primary aggregates every worker's registry (getMetricsAsJSON, sent over
  // IPC as JSON) with AggregatorRegistry.aggregate. The scrape-time metrics must take part
  // like prom-client's own: summed per name and labels, histograms bucket by bucket.
  it("take part in cluster aggregation: two workers' registries sum, label by label", async () => {
    const workers = [new Metrics(), new Metrics()];
    workers[0]!.requestFinished(0, 'server', 'GET /v1/devices', 200, 0.002);
    workers[0]!.requestFinished(0, 'server', 'GET /v1/devices', 200, 0.002);
    workers[1]!.requestFinished(0, 'server', 'GET /v1/devices', 200, 0.2);
    workers[1]!.requestFinished(2, 'scoped', 'GET /v1/sites', 403, 0.0001);
    workers[0]!.keyCache.counts[0]! += 5;
    workers[1]!.keyCache.counts[0]! += 2;
    for (const w of workers) w.policyInfo.labels('abc123').set(1);
    const json = await Promise.all(workers.map(async (w) => JSON.parse(JSON.stringify(await w.registry.getMetricsAsJSON())) as object[]));
    const text = await AggregatorRegistry.aggregate(json).metrics();
    expect(text).toContain('keygate_requests_total{decision="allow",key_type="server",route="GET /v1/devices",status="200"} 3');
    expect(text).toContain('keygate_requests_total{decision="forbidden",key_type="scoped",route="GET /v1/sites",status="403"} 1');
    expect(text).toContain('keygate_request_duration_seconds_bucket{le="0.0025",decision="allow"} 2');
    expect(text).toContain('keygate_request_duration_seconds_bucket{le="+Inf",decision="allow"} 3');
    expect(text).toContain('keygate_request_duration_seconds_count{decision="allow"} 3');
    expect(text).toContain('keygate_key_cache_total{result="hit"} 7');
    expect(text).toContain('keygate_policy_info{version="abc123"} 1');
    expect(text).toContain('keygate_process_cpu_seconds_total ');
    expect(text).not.toContain('keygate_process_process_');
    expect(text).toMatch(/^keygate_nodejs_eventloop_lag_seconds \d/m);
  });
});
