import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HISTORY_MARK, README_BEGIN, README_END, recordGrowth, replaceBetween } from '../../bench/growth/report.ts';
import { OptionError, parseOptions } from '../../bench/options.ts';

describe('bench options: --growth', () => {
  it('alone means every axis, in the order they run', () => {
    expect(parseOptions(['--growth']).growth).toEqual(['answer', 'policy', 'keys', 'connections']);
    expect(parseOptions(['--growth=keys,answer']).growth).toEqual(['answer', 'keys']);
    expect(parseOptions([]).growth).toBeUndefined();
  });

  it('takes the sizes of each axis', () => {
    const o = parseOptions(['--growth', '--growth-items', '1,10', '--growth-routes=5,50,500', '--growth-keys', '100,1000', '--growth-connections', '1,2']);
    expect([o.growthItems, o.growthRoutes, o.growthKeys, o.growthConnections]).toEqual([
      [1, 10],
      [5, 50, 500],
      [100, 1000],
      [1, 2],
    ]);
    expect(parseOptions(['--growth']).growthKeys).toEqual([1000, 1_000_000]);
  });

  it.each([
    [['--growth=answer,sizes'], /--growth: unknown axis "sizes"/],
    [['--growth', '--growth-items', '100,10'], /--growth-items: "100,10" must be at least two ascending sizes/],
    [['--growth', '--growth-items', '100'], /--growth-items: "100" must be at least two ascending sizes/],
    [['--growth', '--growth-items', '1,x'], /--growth-items: "x" must be a whole number/],
    [['--growth-items', '1,10'], /--growth-items needs --growth/],
    [['--record', '--scenario', '2'], /--record needs the whole run/],
    [['--memory', '--record'], /--record needs the whole run/],
    [['--growth=policy', '--record'], /--record needs every growth axis/],
    [['--growth', '--memory'], /--growth cannot be combined with --memory/],
  ])('refuses %j', (argv, message) => {
    expect(() => parseOptions(argv)).toThrow(OptionError);
    expect(() => parseOptions(argv)).toThrow(message);
  });
});

describe('bench --growth --record', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-growth-record-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('rewrites only what lies between the README markers and adds the run on top of the history', () => {
    const readme = join(dir, 'README.md');
    const history = join(dir, 'performance.md');
    writeFileSync(readme, `# x\n\nbefore\n${README_BEGIN}\nold table\n${README_END}\nafter\n`);
    writeFileSync(history, `# History\n\n${HISTORY_MARK}\n\n### Growth run of earlier\n\nolder\n`);
    recordGrowth(readme, history, '| new | table |');
    expect(readFileSync(readme, 'utf8')).toBe(`# x\n\nbefore\n${README_BEGIN}\n| new | table |\n${README_END}\nafter\n`);
    const doc = readFileSync(history, 'utf8');
    expect(doc.indexOf('| new | table |')).toBeGreaterThan(doc.indexOf(HISTORY_MARK));
    expect(doc.indexOf('| new | table |')).toBeLessThan(doc.indexOf('older'));
    recordGrowth(readme, history, '| newer |');
    expect(readFileSync(readme, 'utf8')).not.toContain('| new | table |');
    expect(readFileSync(history, 'utf8')).toContain('| new | table |');
  });

  it('refuses a file without its markers instead of guessing where the table goes', () => {
    expect(() => replaceBetween('no markers here', README_BEGIN, README_END, 'x')).toThrow(/markers .* not found/);
    expect(() => replaceBetween(`${README_END}\n${README_BEGIN}`, README_BEGIN, README_END, 'x')).toThrow(/not found/);
  });
});
