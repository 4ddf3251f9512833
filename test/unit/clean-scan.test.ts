import { describe, expect, it } from 'vitest';
import type { Condition } from '../../src/pipeline/authorize.ts';
import type { BufferedResponse } from '../../src/pipeline/forward.ts';
import { provenClean, scanFields } from '../../src/pipeline/proving/clean-scan.ts';
import { type CheckedResponse, checkListFully, checkSingleFully, listCheck, responseCheck } from '../../src/pipeline/proving/response-checks.ts';
import type { CompiledResource } from '../../src/policy/model.ts';
import { generator } from '../helpers/answer-generator.ts';

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
    // Released as the backend's own bytes, not copied, with only the headers about the response.
    expect((responseCheck(devices, alice)(single) as BufferedResponse).body).toBe(single.body);
  });
});

// ---------------------------------------------------------------------------------------
// Differential: whenever the scanner says clean, the full check (JSON.parse, the raw-text
// count, the strict parser, filtering) must release the very same answer untouched. The
// documents are generated to sit near every edge the scanner has: foreign and odd owners,
// nested owners, field names in values, escapes, duplicates, envelopes, then byte-level
// mutations of those.
// ---------------------------------------------------------------------------------------

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
        if (typeof full === 'string' || full.body !== res.body) expect.fail(`scanner said clean, full check did not release it as is: ${body.toString('latin1')}`);
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
