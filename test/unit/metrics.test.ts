import { describe, expect, it } from 'vitest';
import { DECISION, DECISIONS, decisionOf, Metrics } from '../../src/observability/metrics.ts';
import { parseMetrics, sampleValue } from '../helpers/metrics.ts';

const scrape = async (m: Metrics) => parseMetrics(await m.registry.metrics());

describe('metrics', () => {
  it('each named decision is the index of its label', () => {
    expect(Object.keys(DECISION).sort()).toEqual([...DECISIONS].sort());
    for (const label of DECISIONS) expect(DECISIONS[DECISION[label]]).toBe(label);
  });

  it.each([
    [200, false, 'allow'],
    [502, false, 'allow'], // a backend's own error status, relayed: the request was allowed
    [401, true, 'unauthenticated'],
    [403, true, 'forbidden'],
    [400, true, 'invalid'],
    [413, true, 'invalid'],
    [429, true, 'limited'],
    [503, true, 'error'],
    [504, true, 'error'],
  ] as const)('status %i, refused %s: %s', (status, refused, label) => {
    expect(DECISIONS[decisionOf(status, refused)]).toBe(label);
  });

  it('counts attribute lookups by resource, as told by the attribute source', async () => {
    const m = new Metrics();
    const observe = m.lookupObserver();
    observe('devices');
    observe('devices');
    observe('places');
    const s = await scrape(m);
    expect(sampleValue(s, 'keygate_attribute_lookups_total', { resource: 'devices' })).toBe(2);
    expect(sampleValue(s, 'keygate_attribute_lookups_total', { resource: 'places' })).toBe(1);
  });

  it('counts the key cache and store results under their names', async () => {
    const m = new Metrics();
    const o = m.keyCacheObserver();
    o.hit('positive');
    o.hit('positive');
    o.hit('negative');
    o.miss();
    o.storeQuery(0.001, true);
    o.storeQuery(0.001, false);
    const s = await scrape(m);
    expect(['hit', 'negative_hit', 'miss'].map((result) => sampleValue(s, 'keygate_key_cache_total', { result }))).toEqual([2, 1, 1]);
    expect(['ok', 'error'].map((result) => sampleValue(s, 'keygate_store_query_duration_seconds_count', { result }))).toEqual([1, 1]);
  });

  it('keygate_log_lines_dropped_total is what the log destination dropped, across scrapes', async () => {
    const m = new Metrics();
    let dropped = 0;
    m.watch({ droppedLogLines: () => dropped });
    expect(sampleValue(await scrape(m), 'keygate_log_lines_dropped_total')).toBe(0);
    dropped = 3;
    expect(sampleValue(await scrape(m), 'keygate_log_lines_dropped_total')).toBe(3);
    expect(sampleValue(await scrape(m), 'keygate_log_lines_dropped_total')).toBe(3);
    dropped = 10;
    expect(sampleValue(await scrape(m), 'keygate_log_lines_dropped_total')).toBe(10);
  });
});
