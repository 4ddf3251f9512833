import { join } from 'node:path';
import { seedBenchKeys } from '../keys.ts';
import type { Measurement } from '../load.ts';
import { rssBytes } from '../procfs.ts';
import { type LoadCase, onlyOwnItems } from '../scenarios.ts';
import { startKeygate, startListBackend, startUndiciForwarder } from '../targets.ts';
import { measureAxis, sleep } from './measure.ts';
import { type AxisContext, type AxisResult, count, type GrowthRow, target, times } from './model.ts';

/** The targets: within 10 % of the forwarder at every count, memory returned after the burst. */
const MIN_RATIO = 0.9;
const MAX_RSS_KEPT_MB = 50;

const MB = 2 ** 20;

/** Scenario 2 (scoped list, filter injected, answer checked) at growing connection counts, beside the forwarder. */
export async function connectionsAxis(ctx: AxisContext): Promise<AxisResult> {
  const counts = ctx.opts.growthConnections;
  const smallest = counts[0]!;
  const largest = counts.at(-1)!;
  const prefix = '[connections]';
  const backend = await startListBackend(2);
  const undici = await startUndiciForwarder(backend.url);
  const storePath = join(ctx.dir, 'connections-keys.db');
  const keys = await seedBenchKeys(storePath);
  const keygate = await startKeygate({ upstream: backend.url, storePath, workers: ctx.opts.workers, upstreamQueue: largest });
  try {
    const connections = new Map<string, number>();
    const pairs = counts.map((n) => {
      const check = onlyOwnItems('alice');
      const forwarder: LoadCase = {
        id: `connections-${n}-undici`,
        label: `fwd ${count(n)} conns`,
        kind: 'baseline',
        target: undici,
        method: 'GET',
        path: '/v1/devices?referenceId=alice',
        headers: {},
        expectStatus: 200,
        check,
      };
      const kg: LoadCase = {
        id: `connections-${n}-keygate`,
        label: `kg 2, ${count(n)} conns`,
        kind: 'keygate',
        target: keygate,
        method: 'GET',
        path: '/v1/devices',
        headers: { 'texture-api-key': keys.alice },
        expectStatus: 200,
        check,
      };
      connections.set(forwarder.id, n).set(kg.id, n);
      return { n, forwarder, keygate: kg };
    });
    // RSS idle before the burst: after Keygate's first run at the smallest count (so its
    // heap, JIT and pools are in their ordinary working state) and a second of rest; after
    // the burst: once it has idled for --growth-settle seconds after the largest count.
    let idleMb: number | undefined;
    let peakMb = 0;
    let afterMb = NaN;
    const afterRun = async (c: LoadCase, m: Measurement): Promise<void> => {
      if (c.target !== keygate) return;
      if (c.id === `connections-${smallest}-keygate` && idleMb === undefined) {
        await sleep(1000);
        idleMb = rssBytes(keygate.pids) / MB;
        ctx.log(`${prefix} Keygate RSS idle before the ${count(largest)}-connection burst: ${idleMb.toFixed(1)} MB`);
      }
      if (c.id === `connections-${largest}-keygate`) {
        peakMb = Math.max(peakMb, m.rssMb);
        await sleep(ctx.opts.growthSettle * 1000);
        afterMb = rssBytes(keygate.pids) / MB;
        ctx.log(`${prefix} Keygate RSS ${m.rssMb.toFixed(1)} MB at the end of the burst, ${afterMb.toFixed(1)} MB after ${ctx.opts.growthSettle} s idle`);
      }
    };
    const summaries = await measureAxis(ctx, {
      prefix,
      cases: pairs.flatMap((p) => [p.forwarder, p.keygate]),
      loadFor: (c) => ({ connections: connections.get(c.id)!, backendPids: backend.pids }),
      afterRun,
    });
    const rows: GrowthRow[] = pairs.map((p) => {
      const kg = summaries.get(p.keygate.id)!;
      const fw = summaries.get(p.forwarder.id)!;
      const memory: Record<string, number> = p.n === largest && idleMb !== undefined ? { rssIdleMb: idleMb, rssPeakMb: peakMb, rssAfterMb: afterMb } : {};
      return { axis: 'connections', size: p.n, label: `${count(p.n)} connections`, keygate: kg, forwarder: fw, ratio: kg.median.rps / fw.median.rps, extra: memory };
    });
    const kept = idleMb === undefined ? null : afterMb - idleMb;
    return {
      axis: 'connections',
      title: 'concurrent connections',
      rows,
      measured:
        `scenario 2 ÷ forwarder at ${rows.map((r) => count(r.size)).join(' / ')} connections: ${rows.map((r) => times(r.ratio)).join(' / ')}; ` +
        `Keygate's RSS ${idleMb?.toFixed(0) ?? '–'} MB idle before, ${peakMb.toFixed(0)} MB after the ${count(largest)}-connection run, ${Number.isFinite(afterMb) ? afterMb.toFixed(0) : '–'} MB after ${ctx.opts.growthSettle} s idle`,
      targets: [
        ...rows.map((r) => target(`connections-${r.size}`, `scenario 2 ÷ forwarder at ${count(r.size)} connections`, r.ratio, times(r.ratio), `≥ ${MIN_RATIO}×`, (v) => v >= MIN_RATIO)),
        target(
          'connections-memory',
          `Keygate RSS kept ${ctx.opts.growthSettle} s after the ${count(largest)}-connection burst (after − idle before)`,
          kept,
          `${kept?.toFixed(1)} MB`,
          `≤ ${MAX_RSS_KEPT_MB} MB`,
          (v) => v <= MAX_RSS_KEPT_MB,
        ),
      ],
      notes: [],
      otherErrors: 0,
      otherErrorSamples: [],
    };
  } finally {
    await Promise.all([keygate.stop(), undici.stop(), backend.stop()]);
  }
}
