import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compilePolicy } from '../../src/policy/compile.ts';
import { seedBenchKeys } from '../keys.ts';
import { scrape } from '../metrics.ts';
import { generatePolicy, LAST_ROUTE } from '../policy-gen.ts';
import { cpuSeconds } from '../procfs.ts';
import { type LoadCase, onlyOwnItems } from '../scenarios.ts';
import { median } from '../stats.ts';
import { type KeygateTarget, startKeygate, startListBackend, startUndiciForwarder } from '../targets.ts';
import { measureAxis } from './measure.ts';
import { type AxisContext, type AxisResult, count, type GrowthRow, target, times } from './model.ts';

/** The issue's targets for the policy axis. */
const MAX_LOAD_MS = 1000;
const MAX_STARTUP_MS = 1000;
const MAX_PER_REQUEST_GROWTH = 1.05;

/** Start-ups timed per size (the median is reported); the last one stays up for the load. */
const STARTUPS = 3;
/** Alice's two devices, as in scenario 2: the answer stays small so the policy is what differs. */
const PER_PAGE = 2;

/**
 * load+compile of the generated text in this process: one warm-up, then the median of
 * three, as wall time and as this process's CPU time. On a machine shared with other work
 * the wall time includes the time the process waited for a core; the CPU time does not, so
 * the target is judged on it.
 */
function compileMs(text: string): { wall: number; cpu: number } {
  compilePolicy([{ file: 'generated.yaml', text }]);
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    compilePolicy([{ file: 'generated.yaml', text }]);
    const c = process.cpuUsage(c0);
    wall.push(performance.now() - t0);
    cpu.push((c.user + c.system) / 1000);
  }
  return { wall: median(wall), cpu: median(cpu) };
}

function twoOwnItems(body: string): string | undefined {
  const wrong = onlyOwnItems('alice')(body);
  if (wrong !== undefined) return wrong;
  const n = (JSON.parse(body) as { data: unknown[] }).data.length;
  return n === PER_PAGE ? undefined : `expected ${PER_PAGE} items, got ${n}`;
}

/**
 * Generated policies of growing size (bench/policy-gen.ts), each in a Keygate of its own,
 * all asked for the policy's last route; beside them the in-process load+compile time and
 * each sidecar's start-up time (spawn to "keygate listening").
 */
export async function policyAxis(ctx: AxisContext): Promise<AxisResult> {
  const sizes = ctx.opts.growthRoutes;
  const prefix = '[policy]';
  const compiled = new Map<number, { wall: number; cpu: number }>();
  for (const n of sizes) {
    const t = compileMs(generatePolicy(n));
    compiled.set(n, t);
    ctx.log(`${prefix} load+compile in process, ${count(n)} routes: ${t.wall.toFixed(1)} ms (CPU ${t.cpu.toFixed(1)} ms)`);
  }
  const backend = await startListBackend(PER_PAGE);
  const undici = await startUndiciForwarder(backend.url);
  const storePath = join(ctx.dir, 'policy-keys.db');
  const keys = await seedBenchKeys(storePath);
  const keygates = new Map<number, KeygateTarget>();
  const startups = new Map<number, { wall: number; cpu: number }>();
  try {
    for (const n of sizes) {
      const policies = join(ctx.dir, `policy-${n}`);
      mkdirSync(policies);
      writeFileSync(join(policies, 'generated.yaml'), generatePolicy(n));
      const wall: number[] = [];
      const cpu: number[] = [];
      for (let i = 0; i < STARTUPS; i++) {
        const kg = await startKeygate({ upstream: backend.url, storePath, workers: ctx.opts.workers, policies });
        wall.push(kg.startupMs);
        // Everything the process did so far was starting up.
        cpu.push(cpuSeconds(kg.pids) * 1000);
        if (i < STARTUPS - 1) await kg.stop();
        else keygates.set(n, kg);
      }
      startups.set(n, { wall: median(wall), cpu: median(cpu) });
      ctx.log(`${prefix} start-up with ${count(n)} routes: ${wall.map((t) => t.toFixed(0)).join(', ')} ms (CPU ${cpu.map((t) => t.toFixed(0)).join(', ')} ms)`);
    }
    const forwarder: LoadCase = {
      id: 'policy-undici',
      label: 'fwd',
      kind: 'baseline',
      target: undici,
      method: 'GET',
      path: `/v1/devices?referenceId=alice&perPage=${PER_PAGE}`,
      headers: {},
      expectStatus: 200,
      check: twoOwnItems,
    };
    const cases: LoadCase[] = [
      forwarder,
      ...sizes.map(
        (n): LoadCase => ({
          id: `policy-${n}-keygate`,
          label: `kg ${count(n)} routes`,
          kind: 'keygate',
          target: keygates.get(n)!,
          method: 'GET',
          path: `${LAST_ROUTE.slice(4)}?perPage=${PER_PAGE}`,
          headers: { 'texture-api-key': keys.alice },
          expectStatus: 200,
          check: twoOwnItems,
        }),
      ),
    ];
    const load = { connections: ctx.opts.connections, backendPids: backend.pids };
    const summaries = await measureAxis(ctx, { prefix, cases, loadFor: () => load });
    const fw = summaries.get(forwarder.id)!;
    const rows: GrowthRow[] = [];
    for (const n of sizes) {
      const kg = summaries.get(`policy-${n}-keygate`)!;
      const heap = (await scrape(keygates.get(n)!.opsUrl)).find((s) => s.name === 'keygate_process_nodejs_heap_size_used_bytes')?.value;
      rows.push({
        axis: 'policy',
        size: n,
        label: `${count(n)} routes`,
        keygate: kg,
        forwarder: fw,
        ratio: kg.median.rps / fw.median.rps,
        extra: {
          compileMs: compiled.get(n)!.wall,
          compileCpuMs: compiled.get(n)!.cpu,
          startupMs: startups.get(n)!.wall,
          startupCpuMs: startups.get(n)!.cpu,
          ...(heap === undefined ? {} : { heapUsedMb: heap / 2 ** 20 }),
        },
      });
    }
    const first = rows[0]!;
    const last = rows.at(-1)!;
    const growth = last.keygate.median.cpuUsPerRequest / first.keygate.median.cpuUsPerRequest;
    const list = (f: (r: GrowthRow) => string): string => rows.map(f).join(' → ');
    return {
      axis: 'policy',
      title: 'policy size (generated resources/routes)',
      rows,
      measured:
        `start-up ${list((r) => `${(r.extra.startupMs! / 1000).toFixed(2)} s`)}; load+compile in process ${list((r) => `${r.extra.compileCpuMs!.toFixed(0)}`)} ms of CPU; ` +
        `per request on the last route ${list((r) => times(r.ratio))} the forwarder, Keygate CPU ${list((r) => r.keygate.median.cpuUsPerRequest.toFixed(1))} µs (${count(first.size)} → ${count(last.size)} routes)`,
      targets: [
        target(
          'policy-load',
          `load+compile of ${count(last.size)} routes in process (CPU time)`,
          last.extra.compileCpuMs!,
          `${last.extra.compileCpuMs!.toFixed(0)} ms`,
          `< ${MAX_LOAD_MS} ms`,
          (v) => v < MAX_LOAD_MS,
        ),
        target(
          'policy-startup',
          `sidecar start-up with ${count(last.size)} routes (median of ${STARTUPS})`,
          last.extra.startupMs!,
          `${last.extra.startupMs!.toFixed(0)} ms`,
          `< ${MAX_STARTUP_MS} ms`,
          (v) => v < MAX_STARTUP_MS,
        ),
        target(
          'policy-per-request',
          `Keygate CPU per request, ${count(last.size)} ÷ ${count(first.size)} routes`,
          growth,
          times(growth),
          `≤ ${MAX_PER_REQUEST_GROWTH}×`,
          (v) => v <= MAX_PER_REQUEST_GROWTH,
        ),
      ],
      notes: [],
      otherErrors: 0,
      otherErrorSamples: [],
    };
  } finally {
    await Promise.all([...[...keygates.values()].map((k) => k.stop()), undici.stop(), backend.stop()]);
  }
}
