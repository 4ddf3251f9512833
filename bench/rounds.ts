import { type LoadOptions, type Measurement, runLoad } from './load.ts';
import { assertAlive } from './probe.ts';
import type { LoadCase } from './scenarios.ts';

/** Other processes using more than this % of one core during a run make it "disturbed". */
export const DISTURBED_PERCENT = 20;

function describe(m: Measurement): string {
  return (
    `${Math.round(m.rps).toLocaleString('en-US').padStart(7)} req/s  p50 ${m.p50.toFixed(2)} ms  p99 ${m.p99.toFixed(2)} ms  ` +
    `errors ${m.errors}  cpu ${m.cpuPercent.toFixed(0)}%  client ${m.clientCpuPercent.toFixed(0)}%  other ${m.otherCpuPercent.toFixed(0)}%`
  );
}

export interface RoundsPlan {
  readonly cases: readonly LoadCase[];
  readonly rounds: number;
  /** Seconds of unmeasured load per case before round 1; 0 for none. */
  readonly warmup: number;
  /**
   * Seconds of unmeasured load, at the run's own settings, just before every measured run
   * (0: none). In interleaved rounds each target idles while the others run (4 s to a
   * minute), and Keygate settles its memory in the pause after a burst; measured from
   * cold, the first seconds after such a pause cost Keygate 54-58 µs of CPU per request
   * against 40-45 µs warm (docs/performance.md), so a run measured the wake-up, not the
   * load it names. Every target gets the same lead-in.
   */
  readonly leadIn: number;
  readonly duration: number;
  /** How often a disturbed run is repeated. */
  readonly retries: number;
  /** Everything runLoad needs besides the duration, per case. */
  readonly loadFor: (c: LoadCase) => Omit<LoadOptions, 'duration'>;
  readonly log: (line: string) => void;
  /** Printed before each line (e.g. the growth axis). */
  readonly prefix?: string;
  /** After each kept run (round 0: the warm-up). */
  readonly afterRun?: (c: LoadCase, m: Measurement, round: number) => Promise<void>;
  /** After each round, once every target answered its probe. */
  readonly afterRound?: (round: number) => Promise<void>;
}

export interface RoundsResult {
  /** The kept run of every round, per case id: what the medians are taken of. */
  readonly rounds: Map<string, Measurement[]>;
  /** Warm-up runs and repeated attempts: not in the medians, but their errors count. */
  readonly unkept: Map<string, Measurement[]>;
  readonly retries: number;
}

/**
 * Warm-up, then interleaved rounds (A B C … A B C …) so drift over the run (thermal, other
 * load, GC state) touches every target alike instead of landing on whichever ran last;
 * each measured run follows a short lead-in of the same load.
 * Every target is probed after the warm-up and after every round (see assertAlive).
 */
export async function measureRounds(plan: RoundsPlan): Promise<RoundsResult> {
  const { cases, log } = plan;
  const prefix = plan.prefix === undefined ? '' : `${plan.prefix} `;
  const unkept = new Map<string, Measurement[]>(cases.map((c) => [c.id, []]));
  const rounds = new Map<string, Measurement[]>(cases.map((c) => [c.id, []]));
  let retries = 0;
  if (plan.warmup > 0) {
    for (const c of cases) {
      const m = await runLoad(c, { ...plan.loadFor(c), duration: plan.warmup });
      unkept.get(c.id)!.push(m);
      log(`${prefix}[warm-up]   ${c.label.padEnd(26)} ${describe(m)}`);
      await plan.afterRun?.(c, m, 0);
    }
    await assertAlive(cases, `${prefix}after the warm-up`);
  }
  for (let round = 1; round <= plan.rounds; round++) {
    const tag = `${prefix}[round ${round}/${plan.rounds}]`;
    for (const c of cases) {
      const load = { ...plan.loadFor(c), duration: plan.duration };
      // Not in the medians, but its verification errors count.
      if (plan.leadIn > 0) unkept.get(c.id)!.push(await runLoad(c, { ...load, duration: plan.leadIn }));
      let m = await runLoad(c, load);
      // On a shared machine another process can take a core for seconds; such a run
      // measures the neighbour, so it is repeated (a bounded number of times, keeping
      // the least disturbed) rather than allowed to move the median.
      for (let retry = 1; retry <= plan.retries && m.otherCpuPercent > DISTURBED_PERCENT; retry++) {
        log(`${tag} ${c.label.padEnd(26)} ${describe(m)}  -> disturbed, repeating`);
        retries++;
        const again = await runLoad(c, load);
        // The attempt not kept still counts for verification errors.
        const [kept, dropped] = again.otherCpuPercent < m.otherCpuPercent ? [again, m] : [m, again];
        unkept.get(c.id)!.push(dropped);
        m = kept;
      }
      rounds.get(c.id)!.push(m);
      log(`${tag} ${c.label.padEnd(26)} ${describe(m)}`);
      await plan.afterRun?.(c, m, round);
    }
    await assertAlive(cases, `${prefix}after round ${round}`);
    await plan.afterRound?.(round);
  }
  return { rounds, unkept, retries };
}
