import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { median } from '../stats.ts';
import { type AxisResult, count, type GrowthReport, type GrowthRow, type Summary, times } from './model.ts';

type Extra = Readonly<Record<string, number>>;
const cpuToo = (cpu: number | undefined): string => (cpu === undefined ? '' : ` (CPU ${cpu.toFixed(0)} ms)`);

/** How each axis-specific figure is printed; figures printed with another one map to null. */
const EXTRA: Record<string, (v: number, all: Extra) => string | null> = {
  extraCpuUs: (v) => `${v.toFixed(1)} µs CPU beyond the forwarder`,
  compileMs: (v, all) => `load+compile ${v.toFixed(0)} ms${cpuToo(all.compileCpuMs)}`,
  compileCpuMs: () => null,
  startupMs: (v, all) => `start-up ${v.toFixed(0)} ms${cpuToo(all.startupCpuMs)}`,
  startupCpuMs: () => null,
  heapUsedMb: (v) => `heap ${v.toFixed(0)} MB`,
  coldP50Us: (v) => `cold lookup p50 ${v.toFixed(0)} µs`,
  coldP99Us: (v) => `p99 ${v.toFixed(0)} µs`,
  rssIdleMb: (v) => `RSS idle ${v.toFixed(0)} MB`,
  rssPeakMb: (v) => `end of burst ${v.toFixed(0)} MB`,
  rssAfterMb: (v) => `after settling ${v.toFixed(0)} MB`,
};

function extras(row: GrowthRow): string {
  const out: string[] = [];
  for (const [k, v] of Object.entries(row.extra)) {
    const text = EXTRA[k]?.(v, row.extra);
    if (text !== undefined && text !== null) out.push(text);
  }
  return out.join(', ');
}

const verdict = (pass: boolean | null): string => (pass === null ? 'N/A' : pass ? 'PASS' : 'MISS');
const int = (n: number): string => (Number.isFinite(n) ? count(n) : '–');
const ms = (n: number): string => (Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n.toFixed(1)) : '–');

/** Every case measured (a forwarder shared by several rows once), for error counts. */
function summaries(axes: readonly AxisResult[]): Summary[] {
  const byId = new Map<string, Summary>();
  for (const a of axes) for (const r of a.rows) byId.set(r.keygate.id, r.keygate).set(r.forwarder.id, r.forwarder);
  return [...byId.values()];
}

export function countErrors(axes: readonly AxisResult[]): number {
  return summaries(axes).reduce((n, s) => n + s.errors, 0) + axes.reduce((n, a) => n + a.otherErrors, 0);
}

function rowCells(r: GrowthRow): string[] {
  const k = r.keygate.median;
  const f = r.forwarder.median;
  return [
    r.axis,
    r.label,
    int(k.rps),
    int(f.rps),
    times(r.ratio),
    k.cpuUsPerRequest.toFixed(1),
    f.cpuUsPerRequest.toFixed(1),
    ms(k.p99),
    ms(f.p99),
    String(r.keygate.errors + r.forwarder.errors),
    extras(r),
  ];
}

const HEAD = ['axis', 'size', 'Keygate req/s', 'forwarder req/s', '×', 'Keygate CPU µs/req', 'forwarder CPU µs/req', 'Keygate p99 ms', 'forwarder p99 ms', 'errors', 'also'];

/** The console table: one line per size, then the targets. */
export function formatGrowth(report: GrowthReport): string {
  const rows = [HEAD, ...report.axes.flatMap((a) => a.rows.map(rowCells))];
  const widths = HEAD.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => (i < 2 || i === r.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [line(HEAD), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line), ''];
  for (const a of report.axes) {
    out.push(`${a.title}: ${a.measured.replaceAll('**', '')}`);
    for (const t of a.targets) out.push(`  ${verdict(t.pass).padEnd(4)}  ${t.description}: ${t.display} (target ${t.threshold})`);
    for (const n of a.notes) out.push(`  note: ${n}`);
  }
  const other = report.axes.flatMap((a) => a.rows.flatMap((r) => [...r.keygate.rounds, ...r.forwarder.rounds].map((m) => m.otherCpuPercent)));
  out.push(
    '',
    `Medians of ${report.options.rounds} interleaved round(s) of ${report.options.duration} s (each after a ${report.options.leadIn} s lead-in); × = Keygate req/s ÷ the forwarder's in the same rounds. ` +
      `Other load on the machine during measured runs: median ${median(other).toFixed(0)}%, worst ${Math.max(0, ...other).toFixed(0)}% of one core.`,
  );
  if (report.verificationErrors > 0) {
    out.push(`FAIL  ${report.verificationErrors} verification error(s):`);
    for (const s of summaries(report.axes)) if (s.errors > 0) out.push(`      ${s.label}: ${s.errors} — ${s.errorSamples.join(' | ')}`);
    for (const a of report.axes) if (a.otherErrors > 0) out.push(`      ${a.axis}: ${a.otherErrors} — ${a.otherErrorSamples.join(' | ')}`);
  }
  return out.join('\n');
}

const cell = (s: string): string => s.replaceAll('|', '\\|');

/** The issue's table (axis, measured, target) and the per-size figures, as Markdown. */
export function growthMarkdown(report: GrowthReport, command: string): string {
  const m = report.machine;
  const other = report.axes.flatMap((a) => a.rows.flatMap((r) => [...r.keygate.rounds, ...r.forwarder.rounds].map((x) => x.otherCpuPercent)));
  const out = [
    `One run of \`${command}\` on ${report.finishedAt.slice(0, 10)}: ${m.cpus} vCPUs (${m.model}), ${m.platform}, Node ${m.node}; ` +
      `medians of ${report.options.rounds} interleaved round(s) of ${report.options.duration} s (each after a ${report.options.leadIn} s lead-in), Keygate workers ${report.options.workers}; ` +
      `other processes used a median ${median(other).toFixed(0)} % of a core during the measured runs. Verification errors: ${report.verificationErrors}.`,
    '',
    '| axis | measured | target | |',
    '|---|---|---|---|',
    ...report.axes.map(
      (a) =>
        `| ${cell(a.title)} | ${cell(a.measured)} | ${cell(a.targets.map((t) => `${t.description} ${t.threshold}`).join('; '))} | ${a.targets.map((t) => `${verdict(t.pass)} ${t.display}`).join('; ')} |`,
    ),
    '',
    `| ${HEAD.join(' | ')} |`,
    `|${HEAD.map((_, i) => (i < 2 || i === HEAD.length - 1 ? '---' : '---:')).join('|')}|`,
    ...report.axes.flatMap((a) => a.rows.map((r) => `| ${rowCells(r).map(cell).join(' | ')} |`)),
  ];
  return out.join('\n');
}

export function writeGrowthReport(dir: string, report: GrowthReport): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'growth.json');
  writeFileSync(path, JSON.stringify(report, null, 2) + '\n');
  return path;
}

export const README_BEGIN = '<!-- growth:begin (rewritten by npm run bench -- --growth --record) -->';
export const README_END = '<!-- growth:end -->';
export const HISTORY_MARK = '<!-- growth-runs: newest first (added by npm run bench -- --growth --record) -->';

/** Replaces what lies between the markers; refuses a file without them rather than guess where the table goes. */
export function replaceBetween(text: string, begin: string, end: string, content: string): string {
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  if (a === -1 || b === -1 || b < a) throw new Error(`markers ${begin} … ${end} not found`);
  return text.slice(0, a + begin.length) + '\n' + content + '\n' + text.slice(b);
}

/** README: this run's table between the markers. docs/performance.md: this run added on top of the history. */
export function recordGrowth(readme: string, history: string, markdown: string): void {
  writeFileSync(readme, replaceBetween(readFileSync(readme, 'utf8'), README_BEGIN, README_END, markdown));
  const doc = readFileSync(history, 'utf8');
  const at = doc.indexOf(HISTORY_MARK);
  if (at === -1) throw new Error(`${history}: marker ${HISTORY_MARK} not found`);
  const entry = `\n\n### Growth run of ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC\n\n${markdown}`;
  writeFileSync(history, doc.slice(0, at + HISTORY_MARK.length) + entry + doc.slice(at + HISTORY_MARK.length));
}
