import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import type { ColdStartResult } from './cold-start.ts';
import type { Measurement } from './load.ts';
import type { BenchOptions } from './options.ts';
import type { LoadCase } from './scenarios.ts';
import { median } from './stats.ts';
import { barChart } from './svg.ts';

/** The figures the table shows, each the median over rounds. */
const FIGURES = ['rps', 'p50', 'p99', 'p999', 'cpuPercent', 'cpuUsPerRequest', 'rssMb'] as const;
type Figure = (typeof FIGURES)[number];
type Figures = Record<Figure, number>;

export interface CaseSummary {
  readonly id: string;
  readonly label: string;
  readonly kind: LoadCase['kind'];
  readonly scenario: number | undefined;
  readonly request: string;
  readonly expectStatus: number;
  readonly median: Figures & { clientCpuPercent: number; backendCpuPercent: number; otherCpuPercent: number };
  /** Each figure divided by the bare undici forwarder's (the same figure). */
  readonly ratioToUndici: Figures | undefined;
  /** Verification errors over warm-up, every round and every repeated attempt. */
  readonly errors: number;
  readonly errorSamples: string[];
  readonly rounds: Measurement[];
}

export interface ColdStartSummary {
  readonly scenario: 7;
  readonly label: string;
  readonly concurrency: number;
  /** The largest count over rounds (the target is "exactly 1" in every round). */
  readonly storeQueries: number;
  readonly errors: number;
  readonly errorSamples: string[];
  readonly rounds: ColdStartResult[];
}

export interface TargetCheck {
  readonly id: string;
  readonly description: string;
  readonly value: number | null;
  readonly threshold: string;
  /** null: could not be evaluated in this run (a scenario it needs was not selected). */
  readonly pass: boolean | null;
}

export interface BenchReport {
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly machine: { readonly cpus: number; readonly model: string; readonly node: string; readonly platform: string; readonly loadavg: number[] };
  readonly options: Omit<BenchOptions, 'out'>;
  readonly notes: string[];
  readonly results: CaseSummary[];
  readonly coldStart: ColdStartSummary | undefined;
  readonly targets: TargetCheck[];
  readonly verificationErrors: number;
  /** No verification errors and (unless --no-targets) no missed target. */
  readonly pass: boolean;
}

/** `unkept`: warm-up runs and repeated attempts, which count for errors but not for the medians. */
export function summarizeCase(c: LoadCase, rounds: Measurement[], unkept: Measurement[]): Omit<CaseSummary, 'ratioToUndici'> {
  const m = (f: (x: Measurement) => number): number => median(rounds.map(f));
  const all = [...unkept, ...rounds];
  return {
    id: c.id,
    label: c.label,
    kind: c.kind,
    scenario: c.scenario,
    request: `${c.method} ${c.path}${c.freshKey === true ? ' (new unknown key each request)' : ''}`,
    expectStatus: c.expectStatus,
    median: {
      rps: m((x) => x.rps),
      p50: m((x) => x.p50),
      p99: m((x) => x.p99),
      p999: m((x) => x.p999),
      cpuPercent: m((x) => x.cpuPercent),
      cpuUsPerRequest: m((x) => x.cpuUsPerRequest),
      rssMb: m((x) => x.rssMb),
      clientCpuPercent: m((x) => x.clientCpuPercent),
      backendCpuPercent: m((x) => x.backendCpuPercent),
      otherCpuPercent: m((x) => x.otherCpuPercent),
    },
    errors: all.reduce((n, x) => n + x.errors, 0),
    errorSamples: all.flatMap((x) => x.errorSamples).slice(0, 5),
    rounds,
  };
}

export function withRatios(cases: ReadonlyArray<Omit<CaseSummary, 'ratioToUndici'>>): CaseSummary[] {
  const ref = cases.find((c) => c.id === 'undici')?.median;
  return cases.map((c) => ({
    ...c,
    ratioToUndici: ref === undefined ? undefined : (Object.fromEntries(FIGURES.map((f) => [f, c.median[f] / ref[f]])) as Figures),
  }));
}

export function summarizeColdStart(rounds: ColdStartResult[], concurrency: number): ColdStartSummary {
  return {
    scenario: 7,
    label: 'kg 7 cold start',
    concurrency,
    storeQueries: Math.max(...rounds.map((r) => r.storeQueries)),
    errors: rounds.reduce((n, r) => n + r.errors, 0),
    errorSamples: rounds.flatMap((r) => r.errorSamples).slice(0, 5),
    rounds,
  };
}

/** The performance targets that a throughput run can measure. */
export function checkTargets(cases: readonly CaseSummary[], cold: ColdStartSummary | undefined, scenarios: ReadonlySet<number>): TargetCheck[] {
  const rps = (id: string): number | undefined => cases.find((c) => c.id === id)?.median.rps;
  const ratio = (id: string, description: string, a: string, b: string, min: number): TargetCheck | undefined => {
    const x = rps(a);
    const y = rps(b);
    if (!scenarios.has(Number(a.slice(1)))) return undefined;
    const value = x === undefined || y === undefined ? null : x / y;
    return { id, description, value, threshold: `≥ ${min}×`, pass: value === null ? null : value >= min };
  };
  const checks = [
    ratio('s2-vs-undici', 'scenario 2 req/s ÷ bare undici forwarder', 's2', 'undici', 0.9),
    ratio('s2-vs-http-proxy-3', 'scenario 2 req/s ÷ bare http-proxy-3', 's2', 'http-proxy-3', 1.5),
    ratio('s5-vs-s1', 'scenario 5 (401 flood) req/s ÷ scenario 1', 's5', 's1', 2),
    ratio('s6-vs-s1', 'scenario 6 (403 flood) req/s ÷ scenario 1', 's6', 's1', 2),
    ratio('s8-vs-s2', 'scenario 8 (scenario 2 with rate limiting on) req/s ÷ scenario 2', 's8', 's2', 0.97),
  ].filter((c) => c !== undefined);
  if (scenarios.has(7)) {
    const ok = cold?.rounds.every((r) => r.storeQueries === 1) ?? null;
    checks.push({
      id: 's7-store-queries',
      description: `scenario 7 store queries for ${cold?.concurrency ?? 1000} concurrent first requests (max over rounds)`,
      value: cold?.storeQueries ?? null,
      threshold: '= 1',
      pass: ok,
    });
  }
  return checks;
}

export function machine(): BenchReport['machine'] {
  return { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version, platform: `${process.platform} ${process.arch}`, loadavg: loadavg() };
}

const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
const ms = (n: number): string => (Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n.toFixed(1)) : '-');
const times = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '' : `${n.toFixed(2)}×`);

/** The printed table: every figure with its ratio to the bare undici forwarder. */
export function formatTable(report: BenchReport): string {
  const head = ['target', 'req/s', '×', 'p50 ms', '×', 'p99 ms', '×', 'p99.9 ms', '×', 'errors', 'CPU %', '×', 'CPU µs/req', '×', 'RSS MB', '×'];
  const rows: string[][] = [head];
  for (const c of report.results) {
    const m = c.median;
    const r = c.ratioToUndici;
    rows.push([
      c.label,
      int(m.rps),
      times(r?.rps),
      ms(m.p50),
      times(r?.p50),
      ms(m.p99),
      times(r?.p99),
      ms(m.p999),
      times(r?.p999),
      String(c.errors),
      m.cpuPercent.toFixed(0),
      times(r?.cpuPercent),
      m.cpuUsPerRequest.toFixed(0),
      times(r?.cpuUsPerRequest),
      m.rssMb.toFixed(0),
      times(r?.rssMb),
    ]);
  }
  const widths = head.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: string[]): string =>
    row
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)];
  const cold = report.coldStart;
  if (cold !== undefined) {
    out.push('');
    out.push(
      `${cold.label}: ${cold.concurrency} concurrent first requests with one uncached key -> store queries per round: ` +
        `${cold.rounds.map((r) => r.storeQueries).join(', ')}; ${cold.rounds.map((r) => `${r.ok}/${r.requests} ok in ${r.elapsedMs.toFixed(0)} ms`).join(', ')}; errors ${cold.errors}`,
    );
  }
  const other = report.results.flatMap((c) => c.rounds.map((r) => r.otherCpuPercent));
  const worst = Math.max(0, ...other);
  out.push('');
  out.push(
    'CPU % and RSS are those of the process(es) the client talks to (for "backend direct", the backend). × = ratio to the bare undici forwarder; medians of ' +
      `${report.options.rounds} round(s) of ${report.options.duration} s, ${report.options.connections} connections.`,
  );
  out.push(
    `Other load on the machine during measured runs: median ${median(other).toFixed(0)}%, worst ${worst.toFixed(0)}% of one core` +
      (worst > 15 ? ' (runs competed with other processes: compare ratios, not absolute figures)' : '') +
      '.',
  );
  return out.join('\n');
}

export function formatTargets(report: BenchReport): string {
  const lines = report.targets.map((t) => {
    const verdict = t.pass === null ? 'N/A ' : t.pass ? 'PASS' : 'MISS';
    const value = t.value === null ? 'not measured' : t.id === 's7-store-queries' ? String(t.value) : `${t.value.toFixed(2)}×`;
    return `${verdict}  ${t.description}: ${value} (target ${t.threshold})`;
  });
  if (report.verificationErrors > 0) {
    lines.push(`FAIL  ${report.verificationErrors} verification error(s):`);
    for (const c of [...report.results, ...(report.coldStart === undefined ? [] : [report.coldStart])]) {
      if (c.errors > 0) lines.push(`      ${c.label}: ${c.errors} — ${c.errorSamples.join(' | ')}`);
    }
  }
  return lines.join('\n');
}

export function writeReport(dir: string, report: BenchReport): { json: string; svg: string } {
  mkdirSync(dir, { recursive: true });
  const json = join(dir, 'latest.json');
  const svg = join(dir, 'latest.svg');
  writeFileSync(json, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(svg, barChart(report));
  return { json, svg };
}
