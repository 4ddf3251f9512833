import { resolve } from 'node:path';

export interface BenchOptions {
  /** Seconds per measured run. */
  readonly duration: number;
  readonly connections: number;
  readonly rounds: number;
  /** Seconds of unmeasured load per case before round 1 (JIT, pools and caches warm). */
  readonly warmup: number;
  /** Seconds of unmeasured load just before every measured run (see RoundsPlan.leadIn). */
  readonly leadIn: number;
  /** Only this Keygate scenario (1–7) plus the baselines; undefined: all of them. */
  readonly scenario: number | undefined;
  /** Keygate's `--workers`. */
  readonly workers: number;
  /** Report targets but never fail on them (verification errors still fail). */
  readonly targets: boolean;
  /** Run the bad-key memory flood instead of the throughput bench. */
  readonly memory: boolean;
  /** Distinct unknown keys sent by `--memory`. */
  readonly memoryKeys: number;
  /** Where latest.json / latest.svg (or memory.json) are written. */
  readonly out: string;
  /** How often a run disturbed by other processes is repeated. */
  readonly retries: number;
  /** Write a V8 CPU profile of Keygate (scenarios 1–6) into `out`. */
  readonly profile: boolean;
  /** Run these growth axes instead of the scenario bench; undefined: not a growth run. */
  readonly growth: readonly GrowthAxis[] | undefined;
  /** Sizes measured along each axis, ascending. */
  readonly growthItems: readonly number[];
  readonly growthRoutes: readonly number[];
  readonly growthKeys: readonly number[];
  readonly growthConnections: readonly number[];
  /** Seconds Keygate idles after the largest connection burst before its RSS is read. */
  readonly growthSettle: number;
  /** Rewrite the README's growth table and add this run to docs/performance.md. */
  readonly record: boolean;
}

const GROWTH_AXES = ['answer', 'policy', 'keys', 'connections'] as const;
export type GrowthAxis = (typeof GROWTH_AXES)[number];

export const BENCH_ROOT = import.meta.dirname;
export const SCENARIOS = [1, 2, 3, 4, 5, 6, 7, 8] as const;

const USAGE = `usage: npm run bench -- [options]
  --duration S       seconds per measured run (default 10)
  --connections N    concurrent autocannon connections (default 64)
  --rounds N         interleaved rounds; the median is reported (default 3)
  --warmup S         seconds of warm-up per case before round 1 (default 2)
  --lead-in S        seconds of unmeasured load just before every measured run, so no run measures a target waking from idle (default 1; 0: none)
  --scenario N       only Keygate scenario N (1-8) plus the baselines (8 brings 2 along: its target is a ratio to 2)
  --workers N        Keygate --workers (default 1)
  --no-targets       print targets but do not fail on them
  --memory           flood Keygate with distinct unknown keys and report RSS growth
  --memory-keys N    keys for --memory (default 1000000)
  --out DIR          results directory (default bench/results)
  --retries N        repeat a run at most N times when other processes took > 20% of a core during it (default 2)
  --profile          also write Keygate's V8 CPU profile (*.cpuprofile) into the results directory
  --growth[=AXES]    measure growth beside the forwarder instead: answer,policy,keys,connections (default all)
  --growth-items L   scoped-list sizes for the answer axis (default 1,100,1000)
  --growth-routes L  policy sizes in routes (default 10,1000,10000)
  --growth-keys L    key-store sizes (default 1000,1000000)
  --growth-connections L  connection counts (default 10,1000,5000)
  --growth-settle S  seconds idle after the largest connection burst before Keygate's RSS is read (default 5)
  --record           rewrite the README's results table (with --growth: its growth table) and add the run to docs/performance.md`;

export class OptionError extends Error {}

function number(name: string, value: string | undefined, { min, integer }: { min: number; integer: boolean }): number {
  const n = Number(value);
  if (value === undefined || value === '' || !Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw new OptionError(`--${name}: "${value ?? ''}" must be ${integer ? 'a whole number' : 'a number'} ≥ ${min}`);
  }
  return n;
}

/** `--flag value` and `--flag=value`; unknown flags are errors so a typo cannot silently change a run. */
export function parseOptions(argv: readonly string[]): BenchOptions {
  const values = new Map<string, string | undefined>();
  const booleans = new Set(['no-targets', 'memory', 'profile', 'record', 'help']);
  const known = new Set([
    'duration',
    'connections',
    'rounds',
    'warmup',
    'lead-in',
    'scenario',
    'workers',
    'memory-keys',
    'out',
    'retries',
    'growth',
    'growth-items',
    'growth-routes',
    'growth-keys',
    'growth-connections',
    'growth-settle',
    ...booleans,
  ]);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new OptionError(`unexpected argument "${arg}"\n${USAGE}`);
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    if (!known.has(name)) throw new OptionError(`unknown option --${name}\n${USAGE}`);
    if (name === 'growth') {
      // Optional value: `--growth` alone is every axis (a following word is not its value).
      values.set(name, eq === -1 ? GROWTH_AXES.join(',') : arg.slice(eq + 1));
    } else if (booleans.has(name)) {
      if (eq !== -1) throw new OptionError(`--${name} takes no value`);
      values.set(name, 'true');
    } else {
      values.set(name, eq === -1 ? argv[++i] : arg.slice(eq + 1));
    }
  }
  if (values.has('help')) throw new OptionError(USAGE);
  const get = (name: string): string | undefined => values.get(name);
  const scenario = values.has('scenario') ? number('scenario', get('scenario'), { min: 1, integer: true }) : undefined;
  if (scenario !== undefined && scenario > SCENARIOS.length) throw new OptionError(`--scenario: must be 1–${SCENARIOS.length}`);
  const duration = values.has('duration') ? number('duration', get('duration'), { min: 1, integer: true }) : 10;
  const growth = values.has('growth') ? axes(get('growth')) : undefined;
  if (growth === undefined) {
    for (const name of ['growth-items', 'growth-routes', 'growth-keys', 'growth-connections', 'growth-settle']) {
      if (values.has(name)) throw new OptionError(`--${name} needs --growth`);
    }
    if (values.has('record') && (values.has('scenario') || values.has('memory'))) {
      throw new OptionError("--record needs the whole run (no --scenario, no --memory): the README's table is one whole run");
    }
  }
  if (growth !== undefined && values.has('record') && growth.length < GROWTH_AXES.length) {
    throw new OptionError("--record needs every growth axis: the README's table is one whole run");
  }
  if (growth !== undefined && (values.has('memory') || values.has('scenario') || values.has('profile'))) {
    throw new OptionError('--growth cannot be combined with --memory, --scenario or --profile');
  }
  return {
    // autocannon stops on whole-second ticks, so durations are whole seconds.
    duration,
    connections: values.has('connections') ? number('connections', get('connections'), { min: 1, integer: true }) : 64,
    rounds: values.has('rounds') ? number('rounds', get('rounds'), { min: 1, integer: true }) : 3,
    warmup: values.has('warmup') ? number('warmup', get('warmup'), { min: 0, integer: true }) : Math.min(2, duration),
    leadIn: values.has('lead-in') ? number('lead-in', get('lead-in'), { min: 0, integer: true }) : 1,
    scenario,
    workers: values.has('workers') ? number('workers', get('workers'), { min: 1, integer: true }) : 1,
    targets: !values.has('no-targets'),
    memory: values.has('memory'),
    memoryKeys: values.has('memory-keys') ? number('memory-keys', get('memory-keys'), { min: 1, integer: true }) : 1_000_000,
    out: resolve(get('out') ?? resolve(BENCH_ROOT, 'results')),
    retries: values.has('retries') ? number('retries', get('retries'), { min: 0, integer: true }) : 2,
    profile: values.has('profile'),
    growth,
    growthItems: sizes('growth-items', get('growth-items'), [1, 100, 1000]),
    growthRoutes: sizes('growth-routes', get('growth-routes'), [10, 1000, 10_000]),
    growthKeys: sizes('growth-keys', get('growth-keys'), [1000, 1_000_000]),
    growthConnections: sizes('growth-connections', get('growth-connections'), [10, 1000, 5000]),
    growthSettle: values.has('growth-settle') ? number('growth-settle', get('growth-settle'), { min: 0, integer: false }) : 5,
    record: values.has('record'),
  };
}

function axes(value: string | undefined): GrowthAxis[] {
  const list = (value ?? '').split(',').map((a) => a.trim());
  for (const a of list) {
    if (!(GROWTH_AXES as readonly string[]).includes(a)) throw new OptionError(`--growth: unknown axis "${a}" (axes: ${GROWTH_AXES.join(', ')})`);
  }
  return GROWTH_AXES.filter((a) => list.includes(a));
}

/** A comma-separated list of at least two ascending whole numbers: a growth axis needs two ends. */
function sizes(name: string, value: string | undefined, fallback: number[]): number[] {
  if (value === undefined) return fallback;
  const list = value.split(',').map((v) => number(name, v.trim(), { min: 1, integer: true }));
  if (list.length < 2 || list.some((n, i) => i > 0 && n <= list[i - 1]!)) {
    throw new OptionError(`--${name}: "${value}" must be at least two ascending sizes, e.g. 1,100,1000`);
  }
  return list;
}
