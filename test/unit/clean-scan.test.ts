import { describe, expect, it } from 'vitest';
import type { Condition } from '../../src/pipeline/authorize.ts';
import type { BufferedResponse } from '../../src/pipeline/forward.ts';
import { provenClean, scanFields } from '../../src/pipeline/proving/clean-scan.ts';
import { type CheckedResponse, checkListFully, checkSingleFully, listCheck, responseCheck } from '../../src/pipeline/proving/response-checks.ts';
import type { CompiledResource } from '../../src/policy/model.ts';

const devices = {
  name: 'devices',
  actions: new Map(),
  lookup: null,
  fields: new Map([['referenceId', ['referenceId']]]),
  fieldsDeclared: true,
  position: { file: 'test', line: 1, col: 1 },
} as unknown as CompiledResource;
const alice: Condition[] = [{ attribute: 'referenceId', values: ['alice'] }];
const FIELDS = scanFields(devices, alice)!;

const clean = (text: string | Buffer, shape: 'list' | 'single' = 'list'): boolean => provenClean(typeof text === 'string' ? Buffer.from(text) : text, FIELDS, shape);

const answer = (body: Buffer, status = 200): BufferedResponse => ({ status, headers: { 'content-type': 'application/json; charset=utf-8' }, body });

// The bench's list answer, as the demo backend sends it.
const LIST =
  '{"data":[{"id":"dev_alice_1","referenceId":"alice","name":"Alice\'s thermostat 1","state":{"mode":"heat","heatSetpoint":20.5},' +
  '"tags":["home"]},{"id":"dev_alice_2","referenceId":"alice","state":{"chargePercentage":82},"tags":[]}],"page":1,"perPage":50,"totalItems":2,"totalPages":1}';

describe('provenClean: what it proves', () => {
  it.each([
    ['the backend list answer', LIST],
    ['a bare array', '[{"referenceId":"alice"},{"id":1,"referenceId":"alice"}]'],
    ['an empty list', '{"data":[],"totalItems":0}'],
    ['whitespace everywhere', ' {\n "data" : [ {\t"referenceId" : "alice" , "n" : -1.5e+3 } ] , "page" : null }\r\n'],
    ['escapes and non-ASCII in other strings', '{"data":[{"referenceId":"alice","name":"K\\u00fcche \\"1\\"","room":"Küche ☃"}]}'],
    ['literals and numbers', '{"data":[{"referenceId":"alice","a":true,"b":false,"c":null,"d":0,"e":-0.0,"f":1E9,"g":[1,[2,{}]]}]}'],
    ['an owner named in a value', '{"data":[{"referenceId":"alice","name":"referenceId"}]}'],
    ['an owner named at the end of an escaped value', '{"data":[{"referenceId":"alice","name":"x\\"referenceId"}]}'],
    ['a key that only shares a prefix with the owner', '{"data":[{"referenceId":"alice","referenceIdOld":"bob"}]}'],
  ])('%s is clean', (_name, text) => {
    expect(clean(text)).toBe(true);
  });

  it.each([
    ['another owner’s item', '{"data":[{"referenceId":"alice"},{"referenceId":"bob"}]}'],
    ['an item without an owner', '{"data":[{"id":"x"}]}'],
    ['an owner as a number', '{"data":[{"referenceId":7}]}'],
    ['an owner as an array', '{"data":[{"referenceId":["alice"]}]}'],
    ['an escaped owner value', '{"data":[{"referenceId":"\\u0061lice"}]}'],
    ['a duplicated owner key', '{"data":[{"referenceId":"alice","referenceId":"bob"}]}'],
    ['an escaped key', '{"data":[{"referenc\\u0065Id":"bob","referenceId":"alice"}]}'],
    ['an owner nested in an item', '{"data":[{"referenceId":"alice","peer":{"referenceId":"alice"}}]}'],
    ['an owner key in another case', '{"data":[{"referenceId":"alice","ReferenceId":"bob"}]}'],
    ['an owner key in snake case', '{"data":[{"referenceId":"alice","reference_id":"bob"}]}'],
    ['an owner key with a non-ASCII letter', '{"data":[{"referenceId":"alice","referenceıd":"bob"}]}'],
    ['an owner key with DEL', '{"data":[{"referenceId":"alice","referenceId\u007f":"bob"}]}'],
    ['a nested look-alike owner', '{"data":[{"referenceId":"alice","peer":{"REFERENCEID":"bob"}}]}'],
    ['page twice', '{"data":[{"referenceId":"alice"}],"page":1,"page":2}'],
    ['a non-scalar envelope field', '{"data":[{"referenceId":"alice"}],"links":{"next":"/x"}}'],
    ['an owner in the envelope', '{"data":[],"referenceId":"bob"}'],
    ['data twice', '{"data":[{"referenceId":"alice"}],"data":[{"referenceId":"bob"}]}'],
    ['data that is not a list', '{"data":{"referenceId":"alice"}}'],
    ['no data', '{"page":1}'],
    ['an item that is not an object', '{"data":[{"referenceId":"alice"},1]}'],
    ['trailing garbage', '{"data":[]}x'],
    ['a trailing comma', '{"data":[{"referenceId":"alice"},]}'],
    ['a leading zero', '{"data":[{"referenceId":"alice","n":01}]}'],
    ['a bare dot number', '{"data":[{"referenceId":"alice","n":1.}]}'],
    ['a control character in a string', '{"data":[{"referenceId":"alice","n":"a\u0001"}]}'],
    ['an unknown escape', '{"data":[{"referenceId":"alice","n":"\\x41"}]}'],
    ['a short \\u escape', '{"data":[{"referenceId":"alice","n":"\\u00"}]}'],
    ['a misspelt literal', '{"data":[{"referenceId":"alice","n":tru}]}'],
    ['an unterminated string', '{"data":[{"referenceId":"alice","n":"abc'],
    ['a byte-order mark', '\ufeff{"data":[]}'],
  ])('%s is not proven', (_name, text) => {
    expect(clean(text)).toBe(false);
  });

  it('refuses invalid UTF-8 (an overlong quote) but accepts valid multi-byte text', () => {
    const overlong = Buffer.concat([Buffer.from('{"data":[{"referenceId":"alice","n":"'), Buffer.from([0xc0, 0xa2]), Buffer.from('"}]}')]);
    expect(clean(overlong)).toBe(false);
    expect(clean(Buffer.from('{"data":[{"referenceId":"alice","n":"日本"}]}'))).toBe(true);
  });

  it('refuses nesting deeper than the strict parser allows', () => {
    const deep = (d: number): string => `{"data":[{"referenceId":"alice","n":${'['.repeat(d)}${']'.repeat(d)}}]}`;
    expect(clean(deep(10))).toBe(true);
    expect(clean(deep(100))).toBe(false);
    // At the limit itself: the envelope, `data` and the item take three of the 64 levels.
    expect(clean(deep(62))).toBe(true);
    expect(clean(deep(63))).toBe(false);
    const bare = (d: number): string => `[{"referenceId":"alice","n":${'['.repeat(d)}1${']'.repeat(d)}}]`;
    expect(clean(bare(62))).toBe(true);
    expect(clean(bare(63))).toBe(false);
  });

  it('single: one item of the key’s', () => {
    expect(clean('{"id":"d","referenceId":"alice"}', 'single')).toBe(true);
    expect(clean('{"id":"d","referenceId":"bob"}', 'single')).toBe(false);
    expect(clean('[{"referenceId":"alice"}]', 'single')).toBe(false);
  });

  it('any-of values and several conditions', () => {
    const conds: Condition[] = [
      { attribute: 'referenceId', values: ['bob', 'alice'] },
      { attribute: 'siteId', values: ['s1'] },
    ];
    const res = {
      ...devices,
      fields: new Map([
        ['referenceId', ['referenceId']],
        ['siteId', ['siteId']],
      ]),
    } as CompiledResource;
    const fields = scanFields(res, conds)!;
    expect(provenClean(Buffer.from('[{"siteId":"s1","referenceId":"alice"},{"referenceId":"bob","siteId":"s1"}]'), fields, 'list')).toBe(true);
    expect(provenClean(Buffer.from('[{"siteId":"s2","referenceId":"alice"}]'), fields, 'list')).toBe(false);
    expect(provenClean(Buffer.from('[{"referenceId":"alice"}]'), fields, 'list')).toBe(false);
  });

  it('does not scan nested field paths or unusual field names', () => {
    const nested = { ...devices, fields: new Map([['referenceId', ['owner', 'referenceId']]]) } as CompiledResource;
    expect(scanFields(nested, alice)).toBeNull();
    expect(scanFields({ ...devices, fields: new Map([['referenceId', ['ref"id']]]) } as CompiledResource, alice)).toBeNull();
  });

  it('the checks release a clean single answer as the same object, a clean list as the same bytes, and send other statuses and types to the full check', () => {
    const body = Buffer.from(LIST);
    const ok = answer(body);
    const released = listCheck(devices, alice)(ok) as BufferedResponse;
    expect(released.body).toBe(body); // already in Keygate's list form: not even copied
    expect(released.headers).toEqual({ 'content-type': 'application/json; charset=utf-8', 'content-length': String(body.length) });
    expect(() => listCheck(devices, alice)(answer(body, 404))).toThrow(expect.objectContaining({ code: 'UPSTREAM_ERROR' }));
    expect(() => listCheck(devices, alice)({ ...ok, headers: { 'content-type': 'text/plain' } })).toThrow(expect.objectContaining({ code: 'UPSTREAM_BAD_RESPONSE' }));
    expect(() => listCheck(devices, alice)({ ...ok, headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } })).toThrow(expect.objectContaining({ code: 'UPSTREAM_BAD_RESPONSE' }));
    const single = answer(Buffer.from('{"id":"d","referenceId":"alice"}'));
    expect(responseCheck(devices, alice)(single)).toBe(single);
  });
});

// ---------------------------------------------------------------------------------------
// Differential: whenever the scanner says clean, the full check (JSON.parse, the raw-text
// count, the strict parser, filtering) must release the very same answer untouched. The
// documents are generated to sit near every edge the scanner has: foreign and odd owners,
// nested owners, field names in values, escapes, duplicates, envelopes, then byte-level
// mutations of those.
// ---------------------------------------------------------------------------------------

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function generator(seed: number) {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const ws = (): string => (r() < 0.85 ? '' : pick([' ', '\n', '\t ', '\r\n']));
  // Strings past the scanner's four-byte steps, with quotes, escapes and owners at every offset.
  const long = (): string => {
    const pad = 'abcdefghijklmnopqrstuvwxyz0123'.slice(0, Math.floor(r() * 30));
    const inner = pick(['', '\\"', '\\\\', '\\u0041', '\\/', '\\"referenceId\\":\\"bob\\"', 'referenceId', ' ', 'ü', '☃', '\\n']);
    return `"${pad}${inner}${pad.slice(0, Math.floor(r() * pad.length))}"`;
  };
  const STRINGS = [
    '"x"',
    '"alice"',
    '"bob"',
    '"referenceId"',
    '"x\\"referenceId"',
    '"\\"referenceId\\""',
    '"K\\u00fcche"',
    '"Küche"',
    '"a\\\\b"',
    '""',
    '"data"',
    '"{\\"referenceId\\":\\"bob\\"}"',
    '"},{\\"referenceId\\":\\"bob\\"}"',
    '"\\\\"',
  ];
  const OWNERS = ['"alice"', '"alice"', '"alice"', '"bob"', '7', '["alice"]', '{"id":"alice"}', 'null', '"\\u0061lice"', '"referenceId"'];
  const KEYS = ['"id"', '"name"', '"referenceId"', '"referenc\\u0065Id"', '"data"', '"siteId"', '"page"'];
  // Keys other parsers may read as the owner's (case, separators, a dotless i, DEL) or as `data`.
  const LOOK_ALIKES = [
    '"ReferenceId"',
    '"reference_id"',
    '"referenceıd"',
    '"referenceId\u007f"',
    '"Data"',
    '"REFERENCEID"',
    '"reference-id"',
    '"_referenceId"',
    '"referenceId_"',
    '"REFERENCE_ID"',
    '"ReFeReNcEiD"',
    '"ｒｅｆｅｒｅｎｃｅＩｄ"',
    '"refer\u007fenceId"',
    '"referenceId\\u0000"',
    '"reference\u200dId"',
  ];
  const key = (): string => (r() < 0.1 ? pick(LOOK_ALIKES) : pick(KEYS));
  const NUMBERS = ['1', '-2.5e3', '0', '-0', '1E+2', '1e-7', '9007199254740993', '01', '1.', '.5', '-', '1e', '+1', '0x1', '1.0e'];
  const scalar = (): string => (r() < 0.15 ? long() : r() < 0.2 ? pick(NUMBERS) : pick([...STRINGS, '1', '-2.5e3', '0', 'true', 'false', 'null', 'nul', 'True']));
  const value = (depth: number): string => {
    const roll = r();
    if (depth > 3 || roll < 0.6) return scalar();
    // Nesting at the strict parser's limit of 64 (an item's fields are at depth 2 or 3).
    if (roll < 0.62) {
      const d = 58 + Math.floor(r() * 8);
      return `${'['.repeat(d)}${pick(['', '1', '{}', '[]'])}${']'.repeat(d)}`;
    }
    if (roll < 0.8) return `[${Array.from({ length: Math.floor(r() * 3) }, () => ws() + value(depth + 1) + ws()).join(',')}]`;
    const fields = Array.from({ length: Math.floor(r() * 3) }, () => `${ws()}${key()}${ws()}:${ws()}${pick([...OWNERS, scalar(), value(depth + 1)])}`);
    return `{${fields.join(',')}}`;
  };
  const item = (): string => {
    const fields: string[] = [];
    const owners = r() < 0.9 ? 1 : pick([0, 2]);
    for (let i = 0; i < owners; i++) fields.push(`"referenceId":${ws()}${pick(OWNERS)}`);
    const others = Math.floor(r() * 4);
    for (let i = 0; i < others; i++) fields.push(`${r() < 0.1 ? pick(LOOK_ALIKES) : pick(KEYS.filter((k) => k !== '"referenceId"' || r() < 0.1))}:${value(1)}`);
    fields.sort(() => r() - 0.5);
    return `${ws()}{${ws()}${fields.join(`${ws()},${ws()}`)}${ws()}}${ws()}`;
  };
  const list = (): string => {
    const items = `[${Array.from({ length: Math.floor(r() * 4) }, item).join(',')}]`;
    if (r() < 0.15) return items;
    const env = [`"data":${ws()}${items}`];
    if (r() < 0.5) env.push(pick(['"page":1', '"page":2', '"page":0', '"page":1.0', '"page":"1"']), '"totalItems":2');
    if (r() < 0.4) env.push(pick(['"perPage":2', '"perPage":3', '"perPage":50', '"perPage":-1', '"perPage":99999999']));
    if (r() < 0.05) env.push('"page":3');
    if (r() < 0.1) env.push(`"links":${value(1)}`);
    if (r() < 0.05) env.push(`"data":[${item()}]`);
    if (r() < 0.05) env.push('"referenceId":"bob"');
    env.sort(() => r() - 0.5);
    return `${ws()}{${env.join(',')}}${ws()}`;
  };
  const NOISE = [0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x20, 0x0a, 0x00, 0x1f, 0x80, 0xc0, 0xff, 0x30, 0x31, 0x61, 0x65, 0x2e, 0x2d, 0x75, 0x7f, 0x09];
  // Bad UTF-8: an overlong quote, a truncated sequence, an encoded surrogate, a stray continuation byte.
  const BAD_UTF8 = [[0xc0, 0xa2], [0xe2, 0x98], [0xed, 0xa0, 0x80], [0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]];
  const mutate = (b: Buffer): Buffer => {
    let out = b;
    if (r() < 0.1) {
      const at = Math.floor(r() * out.length);
      return Buffer.concat([out.subarray(0, at), Buffer.from(pick(BAD_UTF8)), out.subarray(at)]);
    }
    for (let m = 1 + Math.floor(r() * 3); m > 0 && out.length > 0; m--) {
      const at = Math.floor(r() * out.length);
      const op = r();
      if (op < 0.33) out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1)]);
      else if (op < 0.66) out = Buffer.concat([out.subarray(0, at), Buffer.from([pick(NOISE)]), out.subarray(at)]);
      else {
        out = Buffer.from(out);
        out[at] = pick(NOISE);
      }
    }
    return out;
  };
  return { r, list, item, mutate };
}

describe('provenClean never disagrees with the full check', () => {
  const CASES = 20_000;

  /**
   * How many generated answers the scanner proved clean; fails at the first whose release
   * differs from the full check's (for lists: the same bytes, nothing dropped; for single
   * answers: the very same answer).
   */
  function differential(seed: number, shape: 'list' | 'single'): number {
    const g = generator(seed);
    let proven = 0;
    for (let n = 0; n < CASES; n++) {
      let body: Buffer = Buffer.from(shape === 'list' ? g.list() : g.item());
      if (g.r() < 0.4) body = g.mutate(body);
      if (!clean(body, shape)) continue;
      proven++;
      const res = answer(body);
      let full: BufferedResponse | string;
      try {
        full = shape === 'list' ? checkListFully(res, devices, alice) : checkSingleFully(res, devices, alice);
      } catch (err) {
        full = `threw ${String(err)}`;
      }
      if (shape === 'single') {
        if (full !== res) expect.fail(`scanner said clean, full check did not release it as is: ${body.toString('latin1')}`);
        continue;
      }
      const fast = listCheck(devices, alice)(res) as CheckedResponse;
      if (typeof full === 'string' || !fast.body.equals(full.body) || (full as CheckedResponse).dropped !== 0) {
        expect.fail(
          `scanner said clean, full check released something else: ${body.toString('latin1')} → ${typeof full === 'string' ? full : full.body.toString('latin1')} vs ${fast.body.toString('latin1')}`,
        );
      }
    }
    return proven;
  }

  // The generator must reach the clean side often enough for these tests to mean anything.
  it.each([1, 2, 3])('lists, seed %i', (seed) => {
    expect(differential(seed, 'list')).toBeGreaterThan(CASES / 20);
  });

  it.each([4, 5])('single items, seed %i', (seed) => {
    expect(differential(seed, 'single')).toBeGreaterThan(CASES / 15);
  });
});
