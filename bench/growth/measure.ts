import type { LoadOptions, Measurement } from '../load.ts';
import { assertAlive } from '../probe.ts';
import { summarizeCase } from '../report.ts';
import { measureRounds } from '../rounds.ts';
import type { LoadCase } from '../scenarios.ts';
import type { AxisContext, Summary } from './model.ts';

export interface AxisPlan {
  readonly prefix: string;
  readonly cases: readonly LoadCase[];
  readonly loadFor: (c: LoadCase) => Omit<LoadOptions, 'duration'>;
  readonly afterRun?: (c: LoadCase, m: Measurement, round: number) => Promise<void>;
  readonly afterRound?: (round: number) => Promise<void>;
}

/** Probe, warm up and measure an axis's cases in interleaved rounds; the median summary per case id. */
export async function measureAxis(ctx: AxisContext, plan: AxisPlan): Promise<Map<string, Summary>> {
  const { opts } = ctx;
  await assertAlive(plan.cases, `${plan.prefix} preflight`);
  const { rounds, unkept, retries } = await measureRounds({
    cases: plan.cases,
    rounds: opts.rounds,
    warmup: opts.warmup,
    leadIn: opts.leadIn,
    duration: opts.duration,
    retries: opts.retries,
    loadFor: plan.loadFor,
    log: ctx.log,
    prefix: plan.prefix,
    ...(plan.afterRun === undefined ? {} : { afterRun: plan.afterRun }),
    ...(plan.afterRound === undefined ? {} : { afterRound: plan.afterRound }),
  });
  if (retries > 0) ctx.log(`${plan.prefix} ${retries} disturbed run(s) repeated`);
  return new Map(plan.cases.map((c) => [c.id, summarizeCase(c, rounds.get(c.id)!, unkept.get(c.id)!)]));
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
