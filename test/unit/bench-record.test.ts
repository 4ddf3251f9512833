import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseOptions } from '../../bench/options.ts';
import { RESULTS_BEGIN, RESULTS_END, RESULTS_HISTORY_MARK, recordResults, resultsMarkdown } from '../../bench/record.ts';
import type { BenchReport } from '../../bench/report.ts';
import { ROOT } from '../helpers/sidecar.ts';

// The shipped latest.json is a whole run, as `npm run bench` wrote it.
const report = JSON.parse(readFileSync(join(ROOT, 'bench/results/latest.json'), 'utf8')) as BenchReport;

describe('bench --record (the scenario run)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-record-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is an option of the whole scenario run', () => {
    expect(parseOptions(['--record']).record).toBe(true);
    expect(parseOptions([]).record).toBe(false);
  });

  it('renders one row per target with its figures, then the performance targets', () => {
    const md = resultsMarkdown(report, 'npm run bench -- --record');
    const rows = md.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| target |'));
    expect(rows).toHaveLength(report.results.length);
    const undici = report.results.find((c) => c.id === 'undici')!;
    // Latencies with two decimals under 10 ms, one from there (p50 too: a slower machine's is over 10).
    const ms = (n: number): string => (n < 10 ? n.toFixed(2) : n.toFixed(1));
    expect(rows).toContainEqual(
      `| ${undici.label} | ${Math.round(undici.median.rps).toLocaleString('en-US')} | 1.00 | ${ms(undici.median.p50)} | ${ms(undici.median.p99)} | ${undici.median.cpuUsPerRequest.toFixed(0)} | ${undici.median.rssMb.toFixed(0)} |`,
    );
    expect(md).toContain('`npm run bench -- --record`');
    for (const t of report.targets) expect(md).toContain(t.description);
  });

  it('rewrites only what lies between the README markers and adds the run on top of the history', () => {
    const readme = join(dir, 'README.md');
    const history = join(dir, 'performance.md');
    writeFileSync(readme, `# x\n\nbefore\n${RESULTS_BEGIN}\nold table\n${RESULTS_END}\nafter\n`);
    writeFileSync(history, `# History\n\n${RESULTS_HISTORY_MARK}\n\n### Run of earlier\n\nolder\n`);
    recordResults(readme, history, '| new | table |');
    expect(readFileSync(readme, 'utf8')).toBe(`# x\n\nbefore\n${RESULTS_BEGIN}\n| new | table |\n${RESULTS_END}\nafter\n`);
    const doc = readFileSync(history, 'utf8');
    expect(doc.indexOf('| new | table |')).toBeGreaterThan(doc.indexOf(RESULTS_HISTORY_MARK));
    expect(doc.indexOf('| new | table |')).toBeLessThan(doc.indexOf('older'));
  });

  it('finds its markers in the README and docs/performance.md', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme.indexOf(RESULTS_BEGIN)).toBeGreaterThan(-1);
    expect(readme.indexOf(RESULTS_END)).toBeGreaterThan(readme.indexOf(RESULTS_BEGIN));
    expect(readFileSync(join(ROOT, 'docs/performance.md'), 'utf8')).toContain(RESULTS_HISTORY_MARK);
  });
});
