import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seedKeys } from './keys.ts';
import { scrape, storeQueries, sumOf } from './metrics.ts';
import { cpuSeconds } from './procfs.ts';
import { startKeygate } from './targets.ts';

export interface ColdStartResult {
  readonly requests: number;
  readonly ok: number;
  /** Wrong status or body, or a connection that failed. */
  readonly errors: number;
  readonly errorSamples: string[];
  /** keygate_store_query_duration_seconds_count after − before: the figure the target is about. */
  readonly storeQueries: number;
  readonly keyCacheMisses: number;
  /** From the first request written to the last response read. */
  readonly elapsedMs: number;
  readonly keygateCpuMs: number;
}

const BATCH = 100;

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Reads one `Connection: close` response to the end. */
function readAll(s: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => (out += c));
    s.once('end', () => resolve(out));
    s.once('error', reject);
    s.setTimeout(30_000, () => s.destroy(new Error('no response within 30 s')));
  });
}

/**
 * Scenario 7: a fresh Keygate (empty caches) and `concurrency` requests carrying one valid
 * key it has never seen, all in flight at once. Sockets are connected first, then every
 * request is written in one synchronous loop, so they reach Keygate together instead of
 * trickling in as connections complete. Always a single process: each --workers process
 * has its own cache and its own /metrics, so "one query" is a per-process property.
 */
export async function coldStart(opts: { upstream: string; concurrency: number }): Promise<ColdStartResult> {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-cold-'));
  const storePath = join(dir, 'keys.db');
  const key = (await seedKeys(storePath, [{ label: 'alice', type: 'scoped', referenceId: 'alice' }])).get('alice')!;
  const keygate = await startKeygate({ upstream: opts.upstream, storePath, workers: 1 });
  const sockets: Socket[] = [];
  try {
    const before = await scrape(keygate.opsUrl);
    const port = Number(new URL(keygate.url).port);
    // In batches: a thousand SYNs at once overflow the listen backlog and cost a 1 s SYN retry.
    for (let i = 0; i < opts.concurrency; i += BATCH) {
      sockets.push(...(await Promise.all(Array.from({ length: Math.min(BATCH, opts.concurrency - i) }, () => openSocket(port)))));
    }
    const raw = `GET /v1/devices HTTP/1.1\r\nHost: bench\r\nTexture-Api-Key: ${key}\r\nConnection: close\r\n\r\n`;
    const replies = sockets.map(readAll);
    const cpu0 = cpuSeconds(keygate.pids);
    const t0 = performance.now();
    for (const s of sockets) s.write(raw);
    const settled = await Promise.allSettled(replies);
    const elapsedMs = performance.now() - t0;
    const keygateCpuMs = (cpuSeconds(keygate.pids) - cpu0) * 1000;
    const after = await scrape(keygate.opsUrl);

    let ok = 0;
    const errorSamples: string[] = [];
    for (const r of settled) {
      let wrong: string | undefined;
      if (r.status === 'rejected') wrong = String(r.reason);
      else if (!r.value.startsWith('HTTP/1.1 200 ')) wrong = r.value.slice(0, 200);
      // The body may be chunked; a substring test is enough to see whose devices came back.
      else if (!r.value.includes('"referenceId":"alice"') || r.value.includes('"referenceId":"bob"')) wrong = `wrong body: ${r.value.slice(0, 200)}`;
      if (wrong === undefined) ok++;
      else if (errorSamples.length < 5) errorSamples.push(wrong);
    }
    return {
      requests: opts.concurrency,
      ok,
      errors: opts.concurrency - ok,
      errorSamples,
      storeQueries: storeQueries(after) - storeQueries(before),
      keyCacheMisses: sumOf(after, 'keygate_key_cache_total', { result: 'miss' }) - sumOf(before, 'keygate_key_cache_total', { result: 'miss' }),
      elapsedMs,
      keygateCpuMs,
    };
  } finally {
    for (const s of sockets) s.destroy();
    await keygate.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
