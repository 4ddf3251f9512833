// `npm run bench -- --record`: the README's results table is this run's, written by the
// bench itself, so the table a user reads is never a hand-copied figure of another run.
import { readFileSync, writeFileSync } from 'node:fs';
import { replaceBetween } from './growth/report.ts';
import type { BenchReport } from './report.ts';
import { median } from './stats.ts';

export const RESULTS_BEGIN = '<!-- results:begin (rewritten by npm run bench -- --record) -->';
export const RESULTS_END = '<!-- results:end -->';
export const RESULTS_HISTORY_MARK = '<!-- results-runs: newest first (added by npm run bench -- --record) -->';

const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
const ms = (n: number): string => (Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n.toFixed(1)) : '–');
const ratio = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(2));
const verdict = (pass: boolean | null): string => (pass === null ? 'N/A' : pass ? 'PASS' : 'MISS');

/** The run as Markdown: where and how it ran, one row per target, the performance targets. */
export function resultsMarkdown(report: BenchReport, command: string): string {
  const m = report.machine;
  const o = report.options;
  const other = report.results.flatMap((c) => c.rounds.map((r) => r.otherCpuPercent));
  const out = [
    `One run of \`${command}\` on ${report.finishedAt.slice(0, 10)}: ${m.cpus} vCPUs (${m.model}) shared by the load generator, ` +
      `the backend and the proxy, ${m.platform}, Node ${m.node}; medians of ${o.rounds} interleaved round(s) of ${o.duration} s (each after a ${o.leadIn} s lead-in), ` +
      `${o.connections} connections, Keygate workers ${o.workers}; other processes used a median ${median(other).toFixed(0)} % of a core. ` +
      `Verification errors: ${report.verificationErrors}.`,
    '',
    '| target | req/s | × undici | p50 ms | p99 ms | CPU µs/req | RSS MB |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...report.results.map((c) => {
      const x = c.median;
      return `| ${c.label} | ${int(x.rps)} | ${ratio(c.ratioToUndici?.rps)} | ${ms(x.p50)} | ${ms(x.p99)} | ${x.cpuUsPerRequest.toFixed(0)} | ${x.rssMb.toFixed(0)} |`;
    }),
    '',
    'Targets: ' +
      report.targets
        .map((t) => {
          const value = t.value === null ? 'not measured' : t.id === 's7-store-queries' ? String(t.value) : `${t.value.toFixed(2)}×`;
          return `${t.description} ${t.threshold}: **${value}** ${verdict(t.pass)}`;
        })
        .join('; ') +
      '.',
  ];
  return out.join('\n');
}

/** README: this run's table between the markers. docs/performance.md: this run added on top of its list. */
export function recordResults(readme: string, history: string, markdown: string): void {
  writeFileSync(readme, replaceBetween(readFileSync(readme, 'utf8'), RESULTS_BEGIN, RESULTS_END, markdown));
  const doc = readFileSync(history, 'utf8');
  const at = doc.indexOf(RESULTS_HISTORY_MARK);
  if (at === -1) throw new Error(`${history}: marker ${RESULTS_HISTORY_MARK} not found`);
  const entry = `\n\n### Run of ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC\n\n${markdown}`;
  writeFileSync(history, doc.slice(0, at + RESULTS_HISTORY_MARK.length) + entry + doc.slice(at + RESULTS_HISTORY_MARK.length));
}
