import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { GrowthReport } from '../../bench/growth/model.ts';
import { runBench } from './run-bench.ts';

const out = mkdtempSync(join(tmpdir(), 'keygate-bench-growth-smoke-'));

afterAll(() => rmSync(out, { recursive: true, force: true }));

const SIZES = { answer: [1, 100, 1000], policy: [10, 1000, 10_000], keys: [1000, 5000], connections: [10, 100, 500] } as const;

// Every growth axis for a second per case, at the real sizes where that is cheap (answers,
// policies) and smaller ones where it is not (a million keys takes ten seconds to write,
// 5,000 connections a core). Targets are not judged (other test files share the cores);
// that every row is measured and every answer verified is.
describe('npm run bench -- --growth (smoke)', () => {
  it('measures every size of every axis beside the forwarder with zero verification errors', async () => {
    const { code, stdout, stderr } = await runBench([
      '--growth',
      '--duration',
      '1',
      '--rounds',
      '1',
      '--warmup',
      '0',
      '--retries',
      '0',
      '--no-targets',
      '--connections',
      '8',
      '--out',
      out,
      '--growth-items',
      SIZES.answer.join(','),
      '--growth-routes',
      SIZES.policy.join(','),
      '--growth-keys',
      SIZES.keys.join(','),
      '--growth-connections',
      SIZES.connections.join(','),
      '--growth-settle',
      '0.5',
    ]);
    expect(code, `${stdout}\n${stderr}`).toBe(0);
    expect(stdout).toMatch(/^axis\s+size\s+Keygate req\/s/m);

    const report = JSON.parse(readFileSync(join(out, 'growth.json'), 'utf8')) as GrowthReport;
    expect(report.axes.map((a) => a.axis)).toEqual(['answer', 'policy', 'keys', 'connections']);
    for (const a of report.axes) {
      expect(
        a.rows.map((r) => r.size),
        a.axis,
      ).toEqual([...SIZES[a.axis]]);
      for (const r of a.rows) {
        expect(r.keygate.errors + r.forwarder.errors, `${a.axis} ${r.label}: ${[...r.keygate.errorSamples, ...r.forwarder.errorSamples].join(' | ')}`).toBe(0);
        expect(r.keygate.median.rps, `${a.axis} ${r.label}`).toBeGreaterThan(0);
        expect(r.forwarder.median.rps, `${a.axis} ${r.label}`).toBeGreaterThan(0);
        expect(Number.isFinite(r.ratio), `${a.axis} ${r.label}`).toBe(true);
      }
      expect(a.otherErrors, a.otherErrorSamples.join(' | ')).toBe(0);
    }
    expect(report.verificationErrors).toBe(0);
    const targets = report.axes.flatMap((a) => a.targets);
    expect(targets.map((t) => t.id)).toEqual([
      'answer-us-per-item',
      'answer-ratio-largest',
      'policy-load',
      'policy-startup',
      'policy-per-request',
      'keys-flood',
      'keys-cold',
      'connections-10',
      'connections-100',
      'connections-500',
      'connections-memory',
    ]);
    for (const t of targets) expect(t.value, t.id).not.toBeNull();
    const policy = report.axes.find((a) => a.axis === 'policy')!;
    for (const r of policy.rows) expect(r.extra.startupMs! > 0 && r.extra.compileMs! > 0, r.label).toBe(true);
    const keys = report.axes.find((a) => a.axis === 'keys')!;
    for (const r of keys.rows) expect(r.extra.coldLookups, r.label).toBe(200);
  }, 180_000);
});
