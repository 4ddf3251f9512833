import type { BenchOptions, GrowthAxis } from '../options.ts';
import type { machine, summarizeCase } from '../report.ts';

export type Summary = ReturnType<typeof summarizeCase>;

/** A target of the table, evaluated on one run. */
export interface GrowthTarget {
  readonly id: string;
  readonly description: string;
  /** null: not measurable in this run (e.g. one size only). */
  readonly value: number | null;
  /** The value as the table prints it (with its unit). */
  readonly display: string;
  readonly threshold: string;
  readonly pass: boolean | null;
}

/** One size along one axis: Keygate and the forwarder measured in the same rounds. */
export interface GrowthRow {
  readonly axis: GrowthAxis;
  readonly size: number;
  /** e.g. "1,000 items", "10,000 routes". */
  readonly label: string;
  readonly keygate: Summary;
  readonly forwarder: Summary;
  /** Keygate req/s ÷ the forwarder's (medians over the same rounds). */
  readonly ratio: number;
  /** What only this axis measures: start-up ms, compile ms, cold-lookup latency, RSS. */
  readonly extra: Readonly<Record<string, number>>;
}

export interface AxisResult {
  readonly axis: GrowthAxis;
  /** The name for the axis, e.g. "scoped list answer size (checked)". */
  readonly title: string;
  readonly rows: GrowthRow[];
  /** The "measured" cell of the summary table. */
  readonly measured: string;
  readonly targets: GrowthTarget[];
  readonly notes: string[];
  /** Verification errors outside the load runs (cold lookups). */
  readonly otherErrors: number;
  readonly otherErrorSamples: string[];
}

export interface GrowthReport {
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly machine: ReturnType<typeof machine>;
  readonly options: Omit<BenchOptions, 'out'>;
  readonly axes: AxisResult[];
  readonly verificationErrors: number;
  /** No verification errors and (unless --no-targets) no missed target. */
  readonly pass: boolean;
}

/** What every axis gets from the run. */
export interface AxisContext {
  readonly opts: BenchOptions;
  readonly log: (line: string) => void;
  /** A temporary directory for stores and policies, removed after the run. */
  readonly dir: string;
}

export const count = (n: number): string => Math.round(n).toLocaleString('en-US');
export const times = (n: number | null | undefined): string => (n === null || n === undefined || !Number.isFinite(n) ? '–' : `${n.toFixed(2)}×`);

export function target(id: string, description: string, value: number | null, display: string, threshold: string, pass: (v: number) => boolean): GrowthTarget {
  return { id, description, value, display: value === null || !Number.isFinite(value) ? 'not measured' : display, threshold, pass: value === null || !Number.isFinite(value) ? null : pass(value) };
}
