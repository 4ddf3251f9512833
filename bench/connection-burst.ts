// Memory of Keygate and the bare undici forwarder around one burst of many kept-alive
// connections: RSS (and, for Keygate, its V8 heap and external memory from /metrics) idle
// before, at the peak, at the end and after some idle seconds. Run by hand:
//   node bench/connection-burst.ts [--connections 5000] [--duration 10] [--settle 5] [--only keygate|undici]
//     [--node-flags "--max-semi-space-size=16 …"] [--snapshot DIR] [--scrape-often]
// Throughput figures from this script are one run on a shared machine: read only the memory.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seedBenchKeys } from './keys.ts';
import { runLoad } from './load.ts';
import { type Sample, scrape } from './metrics.ts';
import { type LoadCase, onlyOwnItems } from './scenarios.ts';
import { startKeygate, startListBackend, startUndiciForwarder, type Target } from './targets.ts';

const MB = 2 ** 20;
const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1]!;
};
const connections = Number(arg('connections', '5000'));
const duration = Number(arg('duration', '10'));
const settle = Number(arg('settle', '5'));
const only = arg('only', 'both');
/** Node flags to start Keygate with instead of its shebang's (space-separated). */
const nodeFlags = process.argv.includes('--node-flags')
  ? arg('node-flags', '')
      .split(' ')
      .filter((f) => f !== '')
  : undefined;
/** With --snapshot DIR (and NODE_OPTIONS=--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=DIR): a heap snapshot, which collects garbage first, after the settle. */
const snapshotDir = arg('snapshot', '');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** VmRSS and its anonymous part, in MB, summed over the target's processes. */
function rss(pids: readonly number[]): { rss: number; anon: number } {
  let rssKb = 0;
  let anonKb = 0;
  for (const pid of pids) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      rssKb += Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      anonKb += Number(/^RssAnon:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    } catch {
      /* exited */
    }
  }
  return { rss: rssKb / 1024, anon: anonKb / 1024 };
}

/** Resident MB of the main malloc heap (brk) and of anonymous mappings, from /proc/PID/smaps. */
function regions(pid: number): string {
  let heap = 0;
  let anon = 0;
  let current = '';
  try {
    for (const l of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
      const m = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(l);
      if (m !== null) current = m[1]!;
      else if (l.startsWith('Rss:')) {
        const kb = Number(/\d+/.exec(l)![0]);
        if (current === '[heap]') heap += kb;
        else if (current === '') anon += kb;
      }
    }
  } catch {
    return '';
  }
  return `, brk heap ${(heap / 1024).toFixed(1)}, other anon maps ${(anon / 1024).toFixed(1)}`;
}

function v8(samples: readonly Sample[]): string {
  const v = (n: string): number => (samples.find((s) => s.name === `keygate_nodejs_${n}`)?.value ?? NaN) / MB;
  const conns = samples.find((s) => s.name === 'keygate_client_connections' || s.name === 'keygate_open_connections')?.value;
  return (
    `heap ${v('heap_size_used_bytes').toFixed(1)}/${v('heap_size_total_bytes').toFixed(1)} MB, external ${v('external_memory_bytes').toFixed(1)} MB` +
    (conns === undefined ? '' : `, connections ${conns}`)
  );
}

async function burst(name: string, target: Target, c: LoadCase, opsUrl: string | undefined, backendPids: readonly number[]): Promise<void> {
  const line = async (when: string): Promise<void> => {
    const r = rss(target.pids);
    const extra = opsUrl === undefined ? '' : `, ${v8(await scrape(opsUrl))}`;
    console.log(`${name.padEnd(8)} ${when.padEnd(22)} RSS ${r.rss.toFixed(1)} MB (anon ${r.anon.toFixed(1)}${regions(target.pids[0]!)})${extra}`);
  };
  await runLoad(c, { connections: 10, duration: 2, backendPids });
  await sleep(1000);
  await line('idle before');
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, rss(target.pids).rss)), 200);
  const m = await runLoad(c, { connections, duration, backendPids });
  clearInterval(sampler);
  console.log(
    `${name.padEnd(8)} burst                  ${connections} connections ${duration} s: ${Math.round(m.rps)} req/s, errors ${m.errors} ${m.errorSamples.slice(0, 1).join('')}, peak RSS ${peak.toFixed(1)} MB`,
  );
  await line('end of burst');
  for (let s = 1; s <= settle; s++) {
    await sleep(1000);
    if (s === settle || (s % 5 === 0 && process.argv.includes('--scrape-often'))) await line(`after ${s} s idle`);
  }
  if (snapshotDir !== '' && opsUrl !== undefined) {
    const before = readdirSync(snapshotDir).length;
    process.kill(target.pids[0]!, 'SIGUSR2');
    while (readdirSync(snapshotDir).length === before) await sleep(200);
    await sleep(3000);
    await line('after a heap snapshot');
  }
}

const dir = mkdtempSync(join(tmpdir(), 'keygate-burst-'));
const backend = await startListBackend(2);
try {
  const check = onlyOwnItems('alice');
  if (only !== 'keygate') {
    const undici = await startUndiciForwarder(backend.url);
    try {
      await burst(
        'undici',
        undici,
        { id: 'u', label: 'u', kind: 'baseline', target: undici, method: 'GET', path: '/v1/devices?referenceId=alice', headers: {}, expectStatus: 200, check },
        undefined,
        backend.pids,
      );
    } finally {
      await undici.stop();
    }
  }
  if (only !== 'undici') {
    const storePath = join(dir, 'keys.db');
    const keys = await seedBenchKeys(storePath);
    const keygate = await startKeygate({ upstream: backend.url, storePath, workers: 1, upstreamQueue: connections, ...(nodeFlags === undefined ? {} : { nodeFlags }) });
    try {
      await burst(
        'keygate',
        keygate,
        { id: 'k', label: 'k', kind: 'keygate', target: keygate, method: 'GET', path: '/v1/devices', headers: { 'texture-api-key': keys.alice }, expectStatus: 200, check },
        keygate.opsUrl,
        backend.pids,
      );
    } finally {
      await keygate.stop();
    }
  }
} finally {
  await backend.stop();
  rmSync(dir, { recursive: true, force: true });
}
