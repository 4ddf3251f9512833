import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchOptions, GrowthAxis } from '../options.ts';
import { machine } from '../report.ts';
import { answerAxis } from './answer.ts';
import { connectionsAxis } from './connections.ts';
import { keysAxis } from './keys.ts';
import type { AxisContext, AxisResult, GrowthReport } from './model.ts';
import { policyAxis } from './policy.ts';
import { countErrors } from './report.ts';

const AXIS: Record<GrowthAxis, (ctx: AxisContext) => Promise<AxisResult>> = {
  answer: answerAxis,
  policy: policyAxis,
  keys: keysAxis,
  connections: connectionsAxis,
};

/**
 * `--growth`: each axis on its own processes (a backend, the bare undici forwarder, the
 * Keygate(s) it needs), one axis after the other; inside an axis every size of Keygate
 * and of the forwarder runs in the same interleaved rounds, so each ratio compares runs
 * made side by side.
 */
export async function runGrowth(opts: BenchOptions, log: (line: string) => void): Promise<GrowthReport> {
  const startedAt = new Date().toISOString();
  const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-growth-'));
  const axes: AxisResult[] = [];
  try {
    log(
      `keygate bench --growth: ${opts.growth!.join(', ')}; ${opts.rounds} round(s) × ${opts.duration} s, warm-up ${opts.warmup} s, lead-in ${opts.leadIn} s, ${opts.connections} connections, Keygate workers ${opts.workers}`,
    );
    for (const axis of opts.growth!) {
      const t0 = performance.now();
      axes.push(await AXIS[axis]({ opts, log, dir }));
      log(`[${axis}] done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const verificationErrors = countErrors(axes);
  const { out: _out, ...options } = opts;
  return {
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: machine(),
    options,
    axes,
    verificationErrors,
    pass: verificationErrors === 0 && (!opts.targets || axes.every((a) => a.targets.every((t) => t.pass !== false))),
  };
}
