import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { generatePolicy } from '../../bench/policy-gen.ts';
import { LineIndex, parseYaml, toJS } from '../../src/policy/yaml-tree.ts';

const at = (text: string, offset: number): string => {
  const { line, col } = new LineIndex(text).linePos(offset);
  return `${line}:${col}`;
};
const errorsOf = (text: string): string[] => parseYaml(text).errors.map((e) => `${at(text, e.offset)} ${e.message}`);
const readValue = (text: string): unknown => {
  const parsed = parseYaml(text);
  expect(parsed.errors).toEqual([]);
  return parsed.contents === null ? null : toJS(parsed.contents);
};

describe('the policy YAML tree', () => {
  it('reads what the yaml library reads: the shipped policies and a generated one', async () => {
    const { readFileSync } = await import('node:fs');
    for (const text of [readFileSync('policies/texture.yaml', 'utf8'), readFileSync('policies/texture.test.yaml', 'utf8'), generatePolicy(50)]) {
      expect(readValue(text)).toEqual(parse(text));
    }
  });

  it('types plain scalars by the core schema, and leaves quoted ones strings', () => {
    expect(readValue("a: 1\nb: '1'\nc: 0x1f\nd: 1.5e3\ne: true\nf: 'true'\ng: ~\nh:\ni: yes\nj: .inf\n")).toEqual({
      a: 1,
      b: '1',
      c: 31,
      d: 1500,
      e: true,
      f: 'true',
      g: null,
      h: null,
      i: 'yes',
      j: Number.POSITIVE_INFINITY,
    });
  });

  it('reads the core tags, and names an unknown or unresolvable one at its position', () => {
    expect(readValue('a: !!str 1\nb: !!int "3"\nc: ! 4\n')).toEqual({ a: '1', b: 3, c: '4' });
    expect(errorsOf('a: !!int abc\n')).toEqual(['1:4 !!int "abc" is not a valid int']);
    expect(errorsOf('a: !thing 1\n')[0]).toMatch(/^1:4 unknown tag !thing/);
    expect(errorsOf('a: !!set [1]\n')).toEqual(['1:4 unknown tag !!set on a sequence']);
  });

  it('refuses a key given twice at the second, by value and type (1 and "1" differ)', () => {
    expect(errorsOf('a: 1\nb: 2\na: 3\n')).toEqual(['3:1 Map keys must be unique']);
    expect(errorsOf("x: { k: 1, 'k': 2 }\n")).toEqual(['1:12 Map keys must be unique']);
    expect(errorsOf("1: a\n'1': b\n")).toEqual([]);
  });

  it('keeps a problem before a syntax error as well as the error', () => {
    expect(errorsOf('a: 1\na: 2\nb: [1\nc: 3\n')).toEqual(['2:1 Map keys must be unique', expect.stringMatching(/^4:1 /)]);
  });

  it('follows an alias to its anchor, refuses one that names none (or the node it is in), and bounds what aliases expand to', () => {
    expect(readValue('a: &k { t: 1 }\nb: *k\n')).toEqual({ a: { t: 1 }, b: { t: 1 } });
    expect(errorsOf('a: *nope\n')).toEqual(['1:4 unknown anchor: *nope names no &nope before it']);
    expect(errorsOf('a: &s [1, *s]\n')).toEqual(['1:11 unknown anchor: *s names no &s before it']);
    const levels = ['l0: &l0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 8; i++) {
      const aliases = Array(10)
        .fill(`*l${i - 1}`)
        .join(', ');
      levels.push(`l${i}: &l${i} [${aliases}]`);
    }
    const bomb = parseYaml(`${levels.join('\n')}\n`);
    expect(bomb.errors).toEqual([]);
    expect(() => toJS(bomb.contents!)).toThrow(/more than 1,000,000 nodes/);
  });

  it('reads "__proto__" as a key, not as the prototype', () => {
    const v = readValue('__proto__: { polluted: 1 }\n') as Record<string, unknown>;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.keys(v)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('places each node where the author sees it begin', () => {
    const text = 'a:\n  - x\n  - "q"\nb: { c: d }\ne: |\n  text\n';
    const root = parseYaml(text).contents;
    if (root?.kind !== 'map') throw new Error('expected a mapping');
    const [a, b, e] = root.items;
    expect(at(text, a!.key.offset)).toBe('1:1');
    expect(at(text, a!.value.offset)).toBe('2:3');
    if (a!.value.kind !== 'seq') throw new Error('expected a sequence');
    expect(a!.value.items.map((n) => at(text, n.offset))).toEqual(['2:5', '3:5']);
    expect(at(text, b!.value.offset)).toBe('4:4');
    expect(at(text, e!.value.offset)).toBe('6:3');
  });

  it('is null for a file of comments, and refuses a second document', () => {
    expect(parseYaml('# nothing\n')).toEqual({ contents: null, errors: [] });
    expect(errorsOf('a: 1\n---\nb: 2\n')).toEqual([expect.stringMatching(/^3:1 a policy file holds one YAML document/)]);
  });
});
