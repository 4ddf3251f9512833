// `node bench/reload.ts`: request latency while Keygate hot-reloads a large policy under load.
// Keygate (bin/keygate.js, or KEYGATE_BIN to measure another build beside this one) serves a
// generated policy of --routes routes (bench/policy-gen.ts) to --connections clients that
// ask for scenario 2's checked list without pause; every few seconds the policy file gets a
// new comment (a new version) and a SIGHUP. Reported: p50/p99/max latency of the requests
// that overlap a reload (from the SIGHUP to Keygate's "policy reloaded" line, which comes
// after its settle read: SETTLE_MS of that window is waiting, not compiling) beside those of
// the steady state, and how many requests were answered inside the reload windows.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { seedBenchKeys } from './keys.ts';
import { BENCH_ROOT } from './options.ts';
import { generatePolicy } from './policy-gen.ts';
import { percentile } from './stats.ts';
import { startBackend } from './targets.ts';

const { values } = parseArgs({
  options: {
    routes: { type: 'string', default: '10000' },
    connections: { type: 'string', default: '16' },
    reloads: { type: 'string', default: '3' },
    gap: { type: 'string', default: '3' },
  },
});
const routes = Number(values.routes);
const connections = Number(values.connections);
const reloads = Number(values.reloads);
const gapMs = Number(values.gap) * 1000;
const bin = process.env.KEYGATE_BIN ?? resolve(BENCH_ROOT, '../bin/keygate.js');

const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-reload-'));
const policies = join(dir, 'policies');
const { mkdirSync } = await import('node:fs');
mkdirSync(policies);
const text = generatePolicy(routes);
const policyFile = join(policies, 'generated.yaml');
writeFileSync(policyFile, text);
const keys = await seedBenchKeys(join(dir, 'keys.db'));
const backend = await startBackend();

const env = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}` };
const kg = spawn(
  bin,
  [
    'serve',
    '--upstream',
    backend.url,
    '--listen',
    '127.0.0.1:0',
    '--ops-listen',
    '127.0.0.1:0',
    '--store',
    `sqlite:${join(dir, 'keys.db')}`,
    '--policies',
    policies,
    '--watch-policies',
    'false',
    '--access-log',
    'false',
  ],
  { env, cwd: dirname(dirname(bin)), stdio: ['ignore', 'pipe', 'inherit'] },
);
let proxy = '';
const reloaded: number[] = [];
const ready = new Promise<void>((resolveReady, reject) => {
  let pending = '';
  kg.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    let nl: number;
    while ((nl = pending.indexOf('\n')) !== -1) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      try {
        const j = JSON.parse(line) as { msg?: string; proxy?: string };
        if (j.msg === 'keygate listening') {
          proxy = j.proxy!;
          resolveReady();
        } else if (j.msg === 'policy reloaded') reloaded.push(performance.now());
      } catch {
        /* not a log line */
      }
    }
  });
  kg.once('exit', (code) => reject(new Error(`keygate exited with ${code}`)));
});
await ready;

const pool = new Pool(`http://${proxy}`, { connections });
const samples: Array<{ start: number; ms: number }> = [];
let running = true;
let errors = 0;
async function client(): Promise<void> {
  while (running) {
    const start = performance.now();
    try {
      const res = await pool.request({ method: 'GET', path: '/v1/devices', headers: { 'texture-api-key': keys.alice } });
      await res.body.text();
      if (res.statusCode !== 200) errors++;
    } catch {
      errors++;
    }
    samples.push({ start, ms: performance.now() - start });
  }
}
const clients = Array.from({ length: connections }, client);
await new Promise((r) => setTimeout(r, 2000)); // warm-up
const measuredFrom = performance.now();
const windows: Array<[number, number]> = [];
for (let k = 0; k < reloads; k++) {
  await new Promise((r) => setTimeout(r, gapMs));
  writeFileSync(policyFile, `${text}# reload ${k}\n`);
  const sent = performance.now();
  const seen = reloaded.length;
  kg.kill('SIGHUP');
  while (reloaded.length === seen) await new Promise((r) => setTimeout(r, 5));
  windows.push([sent, reloaded[seen]!]);
}
await new Promise((r) => setTimeout(r, 1000));
running = false;
await Promise.all(clients);
await pool.close();
kg.kill('SIGTERM');
await backend.stop();

const measured = samples.filter((s) => s.start >= measuredFrom);
const overlaps = (s: { start: number; ms: number }): boolean => windows.some(([a, b]) => s.start < b && s.start + s.ms > a);
const during = measured
  .filter(overlaps)
  .map((s) => s.ms)
  .sort((a, b) => a - b);
const steady = measured
  .filter((s) => !overlaps(s))
  .map((s) => s.ms)
  .sort((a, b) => a - b);
/** The longest time no request was answered inside a reload window: how long the event loop stood still. */
const ends = measured.map((s) => s.start + s.ms).sort((a, b) => a - b);
let stall = 0;
for (const [a, b] of windows) {
  let last = a;
  for (const e of ends) {
    if (e < a) continue;
    if (e > b) break;
    stall = Math.max(stall, e - last);
    last = e;
  }
}
const inside = measured.filter((s) => windows.some(([a, b]) => s.start >= a && s.start + s.ms <= b)).length;
const fmt = (xs: number[]): string => `p50 ${percentile(xs, 50).toFixed(1)} ms  p99 ${percentile(xs, 99).toFixed(1)} ms  max ${(xs.at(-1) ?? 0).toFixed(1)} ms  (${xs.length} requests)`;
process.stdout.write(`${routes} routes, ${connections} connections, ${reloads} reloads (${bin})\n`);
process.stdout.write(`  reload windows: ${windows.map(([a, b]) => `${Math.round(b - a)} ms`).join(', ')}\n`);
process.stdout.write(`  steady:        ${fmt(steady)}\n`);
process.stdout.write(`  during reload: ${fmt(during)}\n`);
process.stdout.write(`  longest time without an answer during a reload: ${stall.toFixed(0)} ms; answered entirely inside a reload window: ${inside}; errors ${errors}\n`);
process.exit(0);
