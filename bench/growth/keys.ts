import { join } from 'node:path';
import { Client } from 'undici';
import { fillKeys, seedKeys } from '../keys.ts';
import type { LoadOptions } from '../load.ts';
import { scrape, storeQueries } from '../metrics.ts';
import { keygateError, type LoadCase, onlyOwnItems } from '../scenarios.ts';
import { percentile } from '../stats.ts';
import { type KeygateTarget, startKeygate, startListBackend, startUndiciForwarder } from '../targets.ts';
import { measureAxis } from './measure.ts';
import { type AxisContext, type AxisResult, count, type GrowthRow, target, times } from './model.ts';

/** The "keep (flat)", as numbers: the flood within 10 %, a cold lookup within 20 %. */
const MIN_FLOOD_RATIO = 0.9;
const MAX_COLD_RATIO = 1.2;

/** First-time keys sent one after another per Keygate and round (and a tenth of that before round 1). */
const COLD_PER_ROUND = 200;

interface Store {
  readonly size: number;
  readonly keygate: KeygateTarget;
  /** Valid scoped keys (alice's) that no request has carried yet. */
  readonly unused: string[];
  readonly latenciesUs: number[];
}

/**
 * Requests one after another on one kept-alive connection, each with a valid key Keygate
 * has never seen: a key-cache miss, a store lookup among `size` keys, then the forward.
 * Latency is the whole request as the client sees it. Keygate's /metrics must show a
 * store query per key (a cached key would not be a cold lookup).
 */
async function coldLookups(store: Store, n: number, record: boolean, oneProcess: boolean): Promise<string[]> {
  const problems: string[] = [];
  const keys = store.unused.splice(0, n);
  if (keys.length < n) return [`only ${keys.length} unused keys left for ${n} cold lookups`];
  const client = new Client(store.keygate.url, { pipelining: 1 });
  try {
    const before = storeQueries(await scrape(store.keygate.opsUrl));
    for (const key of keys) {
      const t0 = performance.now();
      const res = await client.request({ method: 'GET', path: '/v1/devices?perPage=2', headers: { 'texture-api-key': key } });
      const body = await res.body.text();
      const us = (performance.now() - t0) * 1000;
      const wrong = res.statusCode !== 200 ? `status ${res.statusCode}` : onlyOwnItems('alice')(body);
      if (wrong !== undefined) problems.push(`cold lookup: ${wrong}: ${body.slice(0, 200)}`);
      else if (record) store.latenciesUs.push(us);
    }
    // With --workers N, /metrics is one worker's registry: the count proves nothing then.
    const queries = storeQueries(await scrape(store.keygate.opsUrl)) - before;
    if (oneProcess && queries < keys.length) problems.push(`Keygate made ${queries} store queries for ${keys.length} first-time keys: not cold lookups`);
  } finally {
    await client.close();
  }
  return problems;
}

/** The same Keygate over stores of growing size: the 401 flood (a new unknown key per request) and cold lookups of valid keys. */
export async function keysAxis(ctx: AxisContext): Promise<AxisResult> {
  const sizes = ctx.opts.growthKeys;
  const prefix = '[keys]';
  const backend = await startListBackend(2);
  const undici = await startUndiciForwarder(backend.url);
  const stores: Store[] = [];
  const problems: string[] = [];
  const warmCold = Math.ceil(COLD_PER_ROUND / 10);
  try {
    for (const size of sizes) {
      const storePath = join(ctx.dir, `keys-${size}.db`);
      const wanted = Array.from({ length: COLD_PER_ROUND * ctx.opts.rounds + warmCold }, (_, i) => ({ label: `cold-${i}`, type: 'scoped', referenceId: 'alice' }));
      if (wanted.length > size) throw new Error(`--growth-keys: ${count(size)} keys cannot hold the ${wanted.length} the cold lookups need`);
      const t0 = performance.now();
      const unused = [...(await seedKeys(storePath, wanted)).values()];
      fillKeys(storePath, size);
      ctx.log(`${prefix} store of ${count(size)} keys written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      const keygate = await startKeygate({ upstream: backend.url, storePath, workers: ctx.opts.workers });
      stores.push({ size, keygate, unused, latenciesUs: [] });
    }
    const forwarder: LoadCase = {
      id: 'keys-undici',
      label: 'fwd',
      kind: 'baseline',
      target: undici,
      method: 'GET',
      path: '/v1/devices?referenceId=alice&perPage=2',
      headers: {},
      expectStatus: 200,
      check: onlyOwnItems('alice'),
    };
    const floods = stores.map(
      (s): LoadCase => ({
        id: `keys-${s.size}-keygate`,
        label: `kg 401 flood, ${count(s.size)} keys`,
        kind: 'keygate',
        target: s.keygate,
        method: 'GET',
        path: '/v1/devices',
        headers: {},
        freshKey: true,
        expectStatus: 401,
        check: keygateError(401),
      }),
    );
    const base = { connections: ctx.opts.connections, backendPids: backend.pids };
    const loads = new Map<string, Omit<LoadOptions, 'duration'>>();
    stores.forEach((s, i) => {
      // One process: its /metrics counts every store query, so the flood proves its keys were new.
      const queries = async (): Promise<number> => storeQueries(await scrape(s.keygate.opsUrl));
      loads.set(floods[i]!.id, ctx.opts.workers === 1 ? { ...base, storeQueries: queries } : base);
    });
    for (const s of stores) problems.push(...(await coldLookups(s, warmCold, false, ctx.opts.workers === 1)));
    const summaries = await measureAxis(ctx, {
      prefix,
      cases: [forwarder, ...floods],
      loadFor: (c) => loads.get(c.id) ?? base,
      afterRound: async (round) => {
        for (const s of stores) {
          problems.push(...(await coldLookups(s, COLD_PER_ROUND, true, ctx.opts.workers === 1)));
          const sorted = Float64Array.from(s.latenciesUs).sort();
          ctx.log(`${prefix} [round ${round}/${ctx.opts.rounds}] cold lookups, ${count(s.size)} keys: p50 ${percentile(sorted, 50).toFixed(0)} µs, p99 ${percentile(sorted, 99).toFixed(0)} µs`);
        }
      },
    });
    const fw = summaries.get(forwarder.id)!;
    const rows: GrowthRow[] = stores.map((s) => {
      const kg = summaries.get(`keys-${s.size}-keygate`)!;
      const sorted = Float64Array.from(s.latenciesUs).sort();
      return {
        axis: 'keys',
        size: s.size,
        label: `${count(s.size)} keys`,
        keygate: kg,
        forwarder: fw,
        ratio: kg.median.rps / fw.median.rps,
        extra: { coldP50Us: percentile(sorted, 50), coldP99Us: percentile(sorted, 99), coldLookups: sorted.length },
      };
    });
    const first = rows[0]!;
    const last = rows.at(-1)!;
    const flood = last.keygate.median.rps / first.keygate.median.rps;
    const cold = last.extra.coldP50Us! / first.extra.coldP50Us!;
    return {
      axis: 'keys',
      title: 'key-store size',
      rows,
      measured: `${count(first.size)} vs ${count(last.size)} keys: 401 flood ${times(flood)}, cold lookup p50 ${first.extra.coldP50Us!.toFixed(0)} vs ${last.extra.coldP50Us!.toFixed(0)} µs`,
      targets: [
        target('keys-flood', `401 flood req/s, ${count(last.size)} ÷ ${count(first.size)} keys`, flood, times(flood), `≥ ${MIN_FLOOD_RATIO}×`, (v) => v >= MIN_FLOOD_RATIO),
        target('keys-cold', `cold lookup p50, ${count(last.size)} ÷ ${count(first.size)} keys`, cold, times(cold), `≤ ${MAX_COLD_RATIO}×`, (v) => v <= MAX_COLD_RATIO),
      ],
      notes: [`cold lookups: ${COLD_PER_ROUND} first-time keys per store and round, one after another on one kept-alive connection`],
      otherErrors: problems.length,
      otherErrorSamples: problems.slice(0, 5),
    };
  } finally {
    await Promise.all([...stores.map((s) => s.keygate.stop()), undici.stop(), backend.stop()]);
  }
}
