import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seedBenchKeys } from './keys.ts';
import { type Measurement, runLoad } from './load.ts';
import { type Sample, scrape, storeQueries, sumOf } from './metrics.ts';
import type { BenchOptions } from './options.ts';
import { rssBytes } from './procfs.ts';
import { machine } from './report.ts';
import { keygateCases, type LoadCase } from './scenarios.ts';
import { startBackend, startKeygate, type Target } from './targets.ts';

/** The memory target: RSS growth < 100 MB under a flood of 1,000,000 distinct bad keys. */
const MEMORY_GROWTH_LIMIT_MB = 100;

const MB = 2 ** 20;
/**
 * Requests in flight per connection. Measured on the 2-core box: 64 connections without
 * pipelining flood faster (~14k req/s) than 16-deep pipelining (~11k), and pipelining
 * adds Node http-server queueing memory of its own, which is not what this mode is about.
 */
const PIPELINING = 1;

export interface MemoryReport {
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly machine: ReturnType<typeof machine>;
  readonly keys: number;
  readonly workers: number;
  readonly flood: Omit<Measurement, 'rssMb'>;
  readonly rssMb: { readonly before: number; readonly peak: number; readonly after: number; readonly afterSettle: number };
  /** Peak minus before: the figure the target is about (the worst moment, not the end). */
  readonly growthMb: number;
  /** V8 heap (used / total) and external memory, from Keygate's /metrics: where RSS went. */
  readonly heapMb: { readonly before: Heap | null; readonly after: Heap | null };
  /** Sampled every 5 s during the flood: is growth levelling off (bounded) or linear? */
  readonly series: Array<{ readonly responses: number; readonly rssMb: number; readonly heap: Heap | null }>;
  readonly keyCache: { readonly misses: number; readonly negativeHits: number; readonly storeQueries: number };
  /** Entry counts of Keygate's caches, when /metrics exports them. */
  readonly cacheSizes: Record<string, number> | null;
  readonly cacheSizesNote: string;
  readonly pass: boolean;
}

/** Gauges that look like cache sizes (`keygate_cache_entries{cache}`). */
function cacheSizes(samples: readonly Sample[]): Record<string, number> | null {
  const found = samples.filter((s) => /cache/.test(s.name) && /(size|entries|items)/.test(s.name));
  if (found.length === 0) return null;
  return Object.fromEntries(found.map((s) => [`${s.name}${Object.keys(s.labels).length === 0 ? '' : JSON.stringify(s.labels)}`, s.value]));
}

interface Heap {
  readonly usedMb: number;
  readonly totalMb: number;
  readonly externalMb: number;
}

function heap(samples: readonly Sample[]): Heap | null {
  const v = (name: string): number | undefined => samples.find((s) => s.name === `keygate_nodejs_${name}`)?.value;
  const used = v('heap_size_used_bytes');
  const total = v('heap_size_total_bytes');
  const external = v('external_memory_bytes');
  return used === undefined || total === undefined ? null : { usedMb: used / MB, totalMb: total / MB, externalMb: (external ?? 0) / MB };
}

const heapText = (h: Heap | null): string => (h === null ? 'n/a' : `heap ${h.usedMb.toFixed(1)}/${h.totalMb.toFixed(1)} MB, external ${h.externalMb.toFixed(1)} MB`);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * `--memory`: warm Keygate up with ordinary traffic, then send `keys` requests each with a
 * different well-formed key nobody issued. Every one is a cache miss, a store query and a
 * negative-cache entry, which is exactly what must stay bounded.
 */
export async function runMemory(opts: BenchOptions, log: (line: string) => void): Promise<MemoryReport> {
  const startedAt = new Date().toISOString();
  const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-mem-'));
  let backend: Target | undefined;
  let keygate: (Target & { opsUrl: string }) | undefined;
  try {
    backend = await startBackend();
    const storePath = join(dir, 'keys.db');
    const keys = await seedBenchKeys(storePath);
    keygate = await startKeygate({ upstream: backend.url, storePath, workers: opts.workers });
    const t = { backend, undici: backend, httpProxy3: backend, nginx: undefined, keygate };
    const cases = keygateCases(t, keys);
    const warm = cases.find((c) => c.id === 's2')!;
    const flood: LoadCase = cases.find((c) => c.id === 's5')!;
    const load = { connections: opts.connections, duration: 2, backendPids: backend.pids };

    log(`[memory] warm-up: 2 s of scenario 2 so JIT, pools and the key cache are in their steady state`);
    const w = await runLoad(warm, load);
    if (w.errors > 0) throw new Error(`warm-up failed: ${w.errorSamples.join(' | ')}`);
    await sleep(1000);
    const m0 = await scrape(keygate.opsUrl);
    const before = rssBytes(keygate.pids) / MB;
    log(
      `[memory] RSS before: ${before.toFixed(1)} MB, ${heapText(heap(m0))}; flooding ${opts.memoryKeys.toLocaleString('en-US')} distinct unknown keys (${opts.connections} connections, pipelining ${PIPELINING})`,
    );

    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(keygate!.pids) / MB)), 200);
    let ticks = 0;
    const series: MemoryReport['series'] = [];
    const kg = keygate;
    const result = await runLoad(flood, {
      ...load,
      amount: opts.memoryKeys,
      pipelining: PIPELINING,
      onTick: (n) => {
        if (++ticks % 5 !== 0) return;
        const rssMb = rssBytes(kg.pids) / MB;
        void scrape(kg.opsUrl)
          .then(heap, () => null)
          .then((h) => {
            series.push({ responses: n, rssMb, heap: h });
            log(`[memory] ${n.toLocaleString('en-US')} responses, RSS ${rssMb.toFixed(1)} MB, ${heapText(h)}`);
          });
      },
    });
    clearInterval(sampler);
    const after = rssBytes(keygate.pids) / MB;
    peak = Math.max(peak, after);
    await sleep(2000);
    const afterSettle = rssBytes(keygate.pids) / MB;
    const m1 = await scrape(keygate.opsUrl);
    const growthMb = peak - before;
    const sizes = cacheSizes(m1);
    const { rssMb: _rss, ...floodFigures } = result;
    return {
      startedAt,
      finishedAt: new Date().toISOString(),
      machine: machine(),
      keys: opts.memoryKeys,
      workers: opts.workers,
      flood: floodFigures,
      rssMb: { before, peak, after, afterSettle },
      growthMb,
      heapMb: { before: heap(m0), after: heap(m1) },
      series,
      keyCache: {
        misses: sumOf(m1, 'keygate_key_cache_total', { result: 'miss' }) - sumOf(m0, 'keygate_key_cache_total', { result: 'miss' }),
        negativeHits: sumOf(m1, 'keygate_key_cache_total', { result: 'negative_hit' }) - sumOf(m0, 'keygate_key_cache_total', { result: 'negative_hit' }),
        storeQueries: storeQueries(m1) - storeQueries(m0),
      },
      cacheSizes: sizes,
      cacheSizesNote:
        sizes !== null
          ? 'from /metrics'
          : '/metrics exports no cache-size gauge (KeyCache.sizes and BackendAttributes.size exist in src but are not exported); ' +
            'the negative key cache is bounded by its max (DEFAULT_KEY_CACHE.negativeMax) and TTL.' +
            (opts.workers > 1 ? ' With --workers, the figures are summed over the workers.' : ''),
      pass: result.errors === 0 && growthMb < MEMORY_GROWTH_LIMIT_MB,
    };
  } finally {
    await keygate?.stop();
    await backend?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatMemory(r: MemoryReport): string {
  const f = (n: number | null): string => (n === null ? 'n/a' : `${n.toFixed(1)} MB`);
  return [
    `Memory flood: ${r.keys.toLocaleString('en-US')} distinct well-formed unknown keys, Keygate workers ${r.workers}`,
    `  responses        ${r.flood.requests.toLocaleString('en-US')} in ${r.flood.seconds.toFixed(1)} s (${Math.round(r.flood.rps).toLocaleString('en-US')} req/s), statuses ${JSON.stringify(r.flood.statuses)}, errors ${r.flood.errors}`,
    `  RSS              before ${f(r.rssMb.before)}, peak ${f(r.rssMb.peak)}, after ${f(r.rssMb.after)}, after 2 s idle ${f(r.rssMb.afterSettle)}`,
    `  growth (peak − before) ${f(r.growthMb)} (target < ${MEMORY_GROWTH_LIMIT_MB} MB): ${r.growthMb < MEMORY_GROWTH_LIMIT_MB ? 'PASS' : 'MISS'}`,
    `  V8               before: ${heapText(r.heapMb.before)}; after: ${heapText(r.heapMb.after)}`,
    `  key cache        misses ${r.keyCache.misses.toLocaleString('en-US')}, negative hits ${r.keyCache.negativeHits.toLocaleString('en-US')}, store queries ${r.keyCache.storeQueries.toLocaleString('en-US')}`,
    `  cache sizes      ${r.cacheSizes === null ? 'not available' : JSON.stringify(r.cacheSizes)} (${r.cacheSizesNote})`,
    ...(r.flood.errors > 0 ? [`  FAIL verification errors: ${r.flood.errorSamples.join(' | ')}`] : []),
  ].join('\n');
}

export function writeMemoryReport(dir: string, report: MemoryReport): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'memory.json');
  writeFileSync(path, JSON.stringify(report, null, 2) + '\n');
  return path;
}
