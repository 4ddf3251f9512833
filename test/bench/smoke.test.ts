import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchReport } from '../../bench/report.ts';
import { runBench } from './run-bench.ts';

const out = mkdtempSync(join(tmpdir(), 'keygate-bench-smoke-'));

afterAll(() => rmSync(out, { recursive: true, force: true }));

// The whole harness for about a second per case: every process starts, every scenario is
// verified, the files are written. Targets are not judged and disturbed runs are not
// repeated (other test files run alongside: a loaded box says nothing about speed);
// correctness of what was measured is.
describe('npm run bench (smoke)', () => {
  it('runs every scenario with zero verification errors and writes the results', async () => {
    const { code, stdout, stderr } = await runBench(['--duration', '1', '--rounds', '1', '--warmup', '0', '--retries', '0', '--no-targets', '--connections', '8', '--out', out]);
    expect(code, `${stdout}\n${stderr}`).toBe(0);
    expect(stdout).toMatch(/^target\s+req\/s/m);
    expect(stdout).toContain('bare undici forwarder');

    const report = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as BenchReport;
    const ids = report.results.map((r) => r.id);
    expect(ids).toEqual(expect.arrayContaining(['direct', 'undici', 'http-proxy-3', 's1', 's2', 's3', 's4', 's5', 's6', 's8']));
    for (const n of [1, 2, 3, 4, 5, 6, 8])
      expect(
        report.results.some((r) => r.scenario === n),
        `scenario ${n}`,
      ).toBe(true);
    for (const r of report.results) {
      expect(r.errors, `${r.label}: ${r.errorSamples.join(' | ')}`).toBe(0);
      expect(r.median.rps, r.label).toBeGreaterThan(0);
    }
    expect(report.coldStart?.errors).toBe(0);
    expect(report.coldStart?.rounds[0]?.ok).toBe(1000);
    expect(report.coldStart?.storeQueries).toBeGreaterThanOrEqual(1);
    expect(report.verificationErrors).toBe(0);
    expect(report.targets.map((t) => t.id)).toEqual(['s2-vs-undici', 's2-vs-http-proxy-3', 's5-vs-s1', 's6-vs-s1', 's8-vs-s2', 's7-store-queries']);
    expect(readFileSync(join(out, 'latest.svg'), 'utf8')).toMatch(/^<svg [^>]*>[\s\S]*<\/svg>\n$/);
  }, 60_000);
});
