import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { demoDevices, page } from '../../src/demo/data.ts';
import type { Condition } from '../../src/pipeline/authorize.ts';
import type { BufferedResponse } from '../../src/pipeline/forward.ts';
import { jsProvenClean, type ListScan, listScan, provenClean, type ScanFields, type ScanShape, scanEngine, scanFields } from '../../src/pipeline/proving/clean-scan.ts';
import { type CheckedResponse, checkListFully, checkSingleFully, listCheck } from '../../src/pipeline/proving/response-checks.ts';
import { createWasmScanner } from '../../src/pipeline/proving/wasm/wasm-scan.ts';
import type { CompiledResource } from '../../src/policy/model.ts';
import { generator, rng } from '../helpers/answer-generator.ts';

// The WebAssembly walk against the JavaScript walk and against the full check: on every
// answer both walks give one verdict and, for a proven list, the same item ranges and
// paging; and whatever they prove, the full check releases unchanged. A fresh instance
// here, so a fault in the one provenClean uses cannot hide behind it.

const devices = {
  name: 'devices',
  actions: new Map(),
  lookup: null,
  fields: new Map([
    ['referenceId', ['referenceId']],
    ['siteId', ['siteId']],
  ]),
  fieldsDeclared: true,
  position: { file: 'test', line: 1, col: 1 },
} as unknown as CompiledResource;
const alice: Condition[] = [{ attribute: 'referenceId', values: ['alice'] }];
const FIELDS = scanFields(devices, alice)!;
const wasm = createWasmScanner()!;

const answer = (body: Buffer): BufferedResponse => ({ status: 200, headers: { 'content-type': 'application/json; charset=utf-8' }, body });
const fresh = (): ListScan => ({ ranges: [], count: 0, bare: false, page: 0, perPage: 0 });
const sameScan = (a: ListScan, b: ListScan): boolean =>
  a.count === b.count && a.bare === b.bare && a.page === b.page && a.perPage === b.perPage && a.ranges.slice(0, 2 * a.count).join() === b.ranges.slice(0, 2 * b.count).join();

/** Random cuts of the body into chunks, as an answer arrives from the socket. */
function chunks(body: Buffer, r: () => number): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < body.length) {
    const n = 1 + Math.floor(r() * (r() < 0.5 ? 8 : 64));
    out.push(body.subarray(at, at + n));
    at += n;
  }
  return out;
}

const stats = { cases: 0, proven: 0 };

/** The verdict both walks agree on; fails the test where they or the full check disagree. */
function agree(body: Buffer, shape: ScanShape = 'list', fields: ScanFields = FIELDS, r?: () => number): boolean {
  const w = fresh();
  const j = fresh();
  const byWasm = wasm.prove(body, fields, shape, w);
  const byJs = jsProvenClean(body, fields, shape, j);
  stats.cases++;
  if (byWasm !== byJs) expect.fail(`wasm ${String(byWasm)}, js ${byJs}: ${body.toString('latin1')}`);
  if (byWasm && shape === 'list' && !sameScan(w, j)) expect.fail(`scans differ: ${JSON.stringify(w)} vs ${JSON.stringify(j)}: ${body.toString('latin1')}`);
  if (r !== undefined) {
    const w2 = fresh();
    if (wasm.prove(chunks(body, r), fields, shape, w2) !== byWasm || (byWasm && shape === 'list' && !sameScan(w, w2))) {
      expect.fail(`in chunks the verdict differs: ${body.toString('latin1')}`);
    }
  }
  if (!byWasm) return false;
  stats.proven++;
  if (fields !== FIELDS) return true;
  const res = answer(body);
  let full: CheckedResponse | string;
  try {
    full = shape === 'list' ? checkListFully(res, devices, alice) : checkSingleFully(res, devices, alice);
  } catch (err) {
    full = `threw ${String(err)}`;
  }
  if (shape === 'single') {
    if (typeof full === 'string' || full.body !== res.body) expect.fail(`proven clean, the full check did not release it as is: ${body.toString('latin1')}`);
    return true;
  }
  const fast = listCheck(devices, alice)(res) as CheckedResponse;
  if (typeof full === 'string' || !fast.body.equals(full.body) || full.dropped !== 0) {
    expect.fail(`proven clean, the full check released something else: ${body.toString('latin1')} → ${typeof full === 'string' ? full : full.body.toString('latin1')}`);
  }
  return true;
}

const B = (s: string): Buffer => Buffer.from(s);
const item = (extra: string): string => `{"id":"d1","referenceId":"alice"${extra}}`;
const list = (...items: string[]): string => `{"data":[${items.join(',')}],"page":1,"perPage":50}`;

describe('the WebAssembly proof', () => {
  it('is the walk provenClean runs on this runtime, and proves the demo backend’s lists', () => {
    expect(scanEngine).toBe('wasm');
    for (const n of [0, 1, 2, 100, 1000]) {
      const body = B(JSON.stringify(page(demoDevices(['alice'], n), 1, n)));
      expect(provenClean(body, FIELDS, 'list', listScan)).toBe(true);
      expect(listScan.count).toBe(n);
      expect(agree(body)).toBe(true);
      const foreign = B(JSON.stringify(page([...demoDevices(['alice'], n), ...demoDevices(['bob'], 1)], 1, n + 1)));
      expect(agree(foreign)).toBe(false);
    }
  });

  it('a runtime that refuses the module gets the JavaScript walk, chosen at start-up, with the same verdicts', () => {
    // A runtime without WebAssembly SIMD refuses the module at validation; Node's own
    // TypeScript loader needs WebAssembly itself, so that is what a child process is given.
    const refuse = 'data:text/javascript,WebAssembly.validate=()=>false';
    const script = `
      const m = await import(${JSON.stringify(new URL('../../src/pipeline/proving/clean-scan.ts', import.meta.url).href)});
      const f = m.scanFields({ fields: new Map([['k', ['k']]]) }, [{ attribute: 'k', values: ['v'] }]);
      console.log(JSON.stringify([typeof WebAssembly, m.scanEngine, m.provenClean(Buffer.from('[{"k":"v"}]'), f, 'list'), m.provenClean(Buffer.from('[{"k":"w"}]'), f, 'list')]));`;
    const out = execFileSync(process.execPath, ['--import', refuse, '--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual(['object', 'js', true, false]);
    const normal = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(JSON.parse(normal)).toEqual(['object', 'wasm', true, false]);
  });

  it.each([
    ['an escaped owner key', list(`{"\\u0072eferenceId":"bob","referenceId":"alice"}`), false],
    ['an escaped owner key, other letter', list(item(',"referenc\\u0065Id":"bob"')), false],
    ['an escaped key elsewhere', list(item(',"n\\u0061me":"x"')), false],
    ['an owner key inside a string', list(item(',"name":"\\"referenceId\\":\\"bob\\""')), true],
    ['a whole item inside a string', list(item(',"name":"},{\\"referenceId\\":\\"bob\\"}"')), true],
    ['a nested object holding the owner key', list(item(',"peer":{"referenceId":"alice"}')), false],
    ['an array of objects holding the owner key', list(item(',"peers":[{"x":1},{"referenceId":"bob"}]')), false],
    ['a nested look-alike', list(item(',"peer":{"reference_id":"bob"}')), false],
    ['a duplicate owner key', list(item(',"referenceId":"alice"')), false],
    ['a duplicate other key', list(item(',"id":"d2"')), true],
    ['an owner beyond 2^53', list('{"referenceId":9007199254740993}'), false],
    ['numbers beyond 2^53 elsewhere', list(item(',"n":9007199254740993,"m":-1e400,"k":123456789012345678901234567890')), true],
    ['non-ASCII in values', list(item(',"name":"Küche ☃ 日本 😀"')), true],
    ['non-ASCII in a key', list(item(',"nämé":1')), false],
    ['a non-ASCII owner value', list('{"referenceId":"alicé"}'), false],
    ['DEL in a key', list(item(',"na\u007fme":1')), false],
    ['DEL in a value', list(item(',"name":"a\u007fb"')), true],
    ['a NUL in a value', list(item(',"name":"a\u0000b"')), false],
    ['a NUL after the answer', `${list(item(''))}\u0000`, false],
    ['data twice', `{"data":[${item('')}],"data":[]}`, false],
    ['perPage twice', `{"data":[],"perPage":1,"perPage":2}`, false],
    ['an envelope key spelt like perPage but longer', `{"data":[],"perPages":{}}`, false],
    ['paging numbers', `{"data":[${item('')}],"page":10000000,"perPage":10000001}`, true],
  ])('%s', (_name, text, clean) => {
    expect(agree(B(text))).toBe(clean);
    expect(agree(B(text), 'list', FIELDS, rng(7))).toBe(clean);
  });

  it('reads the paging numbers as the JavaScript walk does', () => {
    const w = fresh();
    expect(wasm.prove(B(`{"page":3,"data":[${item('')},${item('')}],"perPage":20,"totalItems":99}`), FIELDS, 'list', w)).toBe(true);
    expect(w).toMatchObject({ count: 2, bare: false, page: 3, perPage: 20 });
    expect(wasm.prove(B(`[${item('')}]`), FIELDS, 'list', w)).toBe(true);
    expect(w).toMatchObject({ count: 1, bare: true, page: 0, perPage: 0 });
    // agree() compares page and perPage with the JavaScript walk's.
    for (const v of ['0', '1', '9', '1.0', '1e2', '-1', '"2"', '100000000', '99999999', 'null', '10000000', '10000001']) {
      expect(agree(B(`{"data":[${item('')}],"page":${v},"perPage":${v}}`))).toBe(true);
    }
    expect(agree(B(`{"data":[],"page":01}`))).toBe(false);
  });

  it('backslash runs before a quote, at every offset across the sixteen-byte steps', () => {
    for (let pad = 0; pad < 40; pad++) {
      for (let run = 0; run <= 7; run++) {
        const s = `${'x'.repeat(pad)}${'\\'.repeat(run)}"tail`;
        // An even run leaves the quote closing the string (then `tail` is garbage); an odd one escapes it.
        agree(B(list(item(`,"name":"${s}"`))));
        agree(B(list(item(`,"name":"${s}\\"referenceId\\":\\"bob"`))));
        agree(B(`[{"referenceId":"alice","${s}":1}]`));
      }
    }
  });

  it('a quote, a control character, DEL or a byte ≥ 0x80 at every offset of keys and values', () => {
    for (let len = 0; len < 48; len++) {
      for (const c of ['"', '\u0001', '\u001f', '\u007f', 'é', '\\n', '\\u0041', '\\x']) {
        for (let at = 0; at <= len; at++) {
          const s = 'a'.repeat(at) + c + 'b'.repeat(len - at);
          agree(B(list(item(`,"name":"${s}"`))));
          agree(B(`[{"referenceId":"alice","${s}":0}]`));
          agree(B(`{"referenceId":"${s}"}`), 'single');
        }
      }
    }
  });

  it('no prefix of a clean answer is clean, and every cut into chunks gives the same verdict', () => {
    const body = B(JSON.stringify(page(demoDevices(['alice'], 3), 1, 3)));
    const r = rng(3);
    for (let cut = 0; cut < body.length; cut++) expect(agree(body.subarray(0, cut), 'list', FIELDS, r)).toBe(false);
    for (let n = 0; n < 300; n++) expect(wasm.prove(chunks(body, r), FIELDS, 'list')).toBe(true);
    // A character split between two chunks.
    const text = B(list(item(',"name":"Küche ☃ 😀"')));
    for (let cut = 1; cut < text.length; cut++) expect(wasm.prove([text.subarray(0, cut), text.subarray(cut)], FIELDS, 'list')).toBe(true);
    const bad = Buffer.concat([B(list(item(',"name":"'))), Buffer.from([0xc0, 0xa2]), B('"}')]);
    for (let cut = 1; cut < bad.length; cut++) expect(wasm.prove([bad.subarray(0, cut), bad.subarray(cut)], FIELDS, 'list')).toBe(false);
  });

  it('nesting at the strict parser’s limit', () => {
    for (let d = 55; d < 70; d++) {
      agree(B(`{"data":[{"referenceId":"alice","n":${'['.repeat(d)}${']'.repeat(d)}}]}`));
      agree(B(`[{"referenceId":"alice","n":${'{"a":'.repeat(d)}1${'}'.repeat(d)}}]`));
      agree(B(`{"referenceId":"alice","n":${'['.repeat(d)}1${']'.repeat(d)}}`), 'single');
    }
  });

  it('several fields and values, and field sets that take turns (the table is rewritten)', () => {
    const both = scanFields(devices, [
      { attribute: 'referenceId', values: ['bob', 'alice'] },
      { attribute: 'siteId', values: ['s1', 's2'] },
    ])!;
    const bob = scanFields(devices, [{ attribute: 'referenceId', values: ['bob'] }])!;
    const two = B('[{"siteId":"s2","referenceId":"alice"},{"referenceId":"bob","siteId":"s1"}]');
    for (let k = 0; k < 3; k++) {
      expect(agree(two, 'list', both)).toBe(true);
      expect(agree(two, 'list', bob)).toBe(false);
      expect(agree(B('[{"referenceId":"bob"}]'), 'list', bob)).toBe(true);
      expect(agree(B('[{"referenceId":"bob"}]'), 'list', both)).toBe(false);
      expect(agree(B('[{"siteId":"s1","referenceId":"alice","site_id":"x"}]'), 'list', both)).toBe(false);
      expect(agree(B(list(item(''))))).toBe(true);
    }
  });

  it('fields whose table does not fit leave the proof to the JavaScript walk', () => {
    const many = Array.from({ length: 5000 }, (_, i) => `owner-number-${i}`);
    const big = scanFields(devices, [{ attribute: 'referenceId', values: many }])!;
    const body = B('[{"referenceId":"owner-number-4999"}]');
    expect(wasm.prove(body, big, 'list')).toBeUndefined();
    expect(provenClean(body, big, 'list')).toBe(true);
    expect(wasm.prove(B(list(item(''))), FIELDS, 'list')).toBe(true);
  });

  it('a large answer after small ones and small ones after it (the memory grows, the views follow)', () => {
    const bigBody = B(JSON.stringify(page(demoDevices(['alice'], 10_000), 1, 10_000)));
    const w = fresh();
    expect(wasm.prove(B(list(item(''))), FIELDS, 'list', w)).toBe(true);
    expect(wasm.prove(bigBody, FIELDS, 'list', w)).toBe(true);
    expect(w.count).toBe(10_000);
    expect(agree(B(list(item(''), item(''))))).toBe(true);
    expect(agree(B(list(item(''), '{"referenceId":"bob"}')))).toBe(false);
  });

  describe('generated answers (the differential generator, in chunks too)', () => {
    const CASES = 20_000;
    function run(seed: number, shape: ScanShape): number {
      const g = generator(seed);
      const r = rng(seed * 31);
      let proven = 0;
      for (let n = 0; n < CASES; n++) {
        let body = B(shape === 'list' ? g.list() : g.item());
        if (g.r() < 0.4) body = g.mutate(body);
        if (agree(body, shape, FIELDS, n % 4 === 0 ? r : undefined)) proven++;
      }
      return proven;
    }
    it.each([11, 12, 13])('lists, seed %i', (seed) => {
      expect(run(seed, 'list')).toBeGreaterThan(CASES / 20);
    });
    it.each([14, 15])('single items, seed %i', (seed) => {
      expect(run(seed, 'single')).toBeGreaterThan(CASES / 15);
    });
    it('counted', () => {
      // Printed for the record of how much was compared.
      process.stdout.write(`wasm-scan differential: ${stats.cases} answers compared, ${stats.proven} proven clean\n`);
      expect(stats.cases).toBeGreaterThan(100_000);
    });
  });
});
