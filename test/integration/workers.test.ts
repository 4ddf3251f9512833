// `serve --workers 2`: the primary supervises its workers and reports for the whole group.
// Real processes: the worker pids are read from the kernel (/proc), not from Keygate.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { type DemoBackend, startDemoBackend } from '../../src/demo/backend.ts';
import { key, send } from '../helpers/http.ts';
import { type Sidecar, seedKeys, startSidecar, type TestKeys, tempStore } from '../helpers/sidecar.ts';

let backend: DemoBackend | undefined;
let sidecar: Sidecar | undefined;
afterEach(async () => {
  for (const pid of sidecar === undefined ? [] : children(sidecar.proc.pid!)) kill(pid, 'SIGKILL');
  await sidecar?.stop('SIGKILL');
  await backend?.close();
});

/** The primary's child processes (its workers), from the kernel. */
function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function boot(): Promise<TestKeys> {
  backend = await startDemoBackend();
  const store = tempStore();
  const keys = await seedKeys(store);
  sidecar = await startSidecar({ upstream: backend.url, store, args: ['--workers', '2'] });
  await until('two workers', () => children(sidecar!.proc.pid!).length === 2);
  await until('ready', async () => (await send(sidecar!.opsUrl, 'GET', '/readyz')).status === 200);
  return keys;
}

function sumOf(metrics: string, name: string): number {
  let total = 0;
  for (const line of metrics.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

describe('--workers 2', () => {
  it('/metrics counts the requests of every worker', async () => {
    const keys = await boot();
    const n = 200;
    // One connection per request: node:cluster hands connections to the workers in turn.
    for (let i = 0; i < n; i += 20) {
      await Promise.all(Array.from({ length: 20 }, async () => expect((await send(sidecar!.url, 'GET', '/v1/devices', { headers: key(keys.server) })).status).toBe(200)));
    }
    const metrics = (await send(sidecar!.opsUrl, 'GET', '/metrics')).text;
    expect(sumOf(metrics, 'keygate_requests_total')).toBe(n);
    expect(sumOf(metrics, 'keygate_request_duration_seconds_count')).toBe(n);
    expect(metrics).toMatch(/^keygate_workers\{state="running"\} 2$/m);
    expect(metrics).toMatch(/^keygate_workers\{state="expected"\} 2$/m);
    expect(sumOf(metrics, 'keygate_worker_restarts_total')).toBe(0);
    // Aggregation keeps one sample per name and labels (no duplicate series), and per-process
    // figures that must not be summed are not: the policy version is 1, not 2.
    expect(metrics).toMatch(/^keygate_policy_info\{version="[0-9a-f]{12}"\} 1$/m);
    expect(metrics).toMatch(/^keygate_process_cpu_seconds_total \d/m);
  });

  it('a worker killed with kill -9 is replaced and counted; /readyz is 503 until it is back', async () => {
    const keys = await boot();
    const before = children(sidecar!.proc.pid!);
    kill(before[0]!, 'SIGKILL');
    let sawNotReady = false;
    await until('a replacement worker', async () => {
      const ready = await send(sidecar!.opsUrl, 'GET', '/readyz');
      if (ready.status === 503) sawNotReady = true;
      const now = children(sidecar!.proc.pid!);
      return now.length === 2 && !now.includes(before[0]!) && ready.status === 200;
    });
    expect(sawNotReady, '/readyz said ready with a worker missing').toBe(true);
    const metrics = (await send(sidecar!.opsUrl, 'GET', '/metrics')).text;
    expect(sumOf(metrics, 'keygate_worker_restarts_total')).toBe(1);
    const ready = await send(sidecar!.opsUrl, 'GET', '/readyz');
    expect(ready.json.workers).toMatchObject({ expected: 2, ready: 2, restarts: 1 });
    expect(sidecar!.logs.some((l) => l.msg === 'worker exited' && l.signal === 'SIGKILL')).toBe(true);
    for (let i = 0; i < 10; i++) expect((await send(sidecar!.url, 'GET', '/v1/devices', { headers: key(keys.alice) })).status).toBe(200);
  });

  it('workers that keep crashing make the primary exit non-zero', async () => {
    await boot();
    const exited = new Promise<number | null>((resolve) => sidecar!.proc.once('exit', (code) => resolve(code)));
    let gone = false;
    void exited.then(() => (gone = true));
    const killed = new Set<number>();
    while (!gone) {
      for (const pid of children(sidecar!.proc.pid!)) {
        if (!killed.has(pid)) {
          killed.add(pid);
          kill(pid, 'SIGKILL');
        }
      }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 25))]);
      if (killed.size > 40) break; // never: the primary gives up after 6
    }
    const code = await exited;
    console.log(`[observation] ${killed.size} workers killed → primary exit ${code}`);
    expect(code).toBe(1);
    expect(sidecar!.logs.some((l) => l.msg === 'workers keep crashing; stopping')).toBe(true);
  });
});
