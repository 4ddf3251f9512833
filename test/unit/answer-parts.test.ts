import { describe, expect, it } from 'vitest';
import { demoDevices, page } from '../../src/demo/data.ts';
import type { Condition } from '../../src/pipeline/authorize.ts';
import type { BufferedResponse } from '../../src/pipeline/forward.ts';
import { type ListScan, listScan, provenClean, scanFields } from '../../src/pipeline/proving/clean-scan.ts';
import { renderScannedList } from '../../src/pipeline/proving/list-render.ts';
import { MAX_PARTS, PartsResponse, renderScannedParts } from '../../src/pipeline/proving/parts.ts';
import { type CheckedResponse, checkListFully, listCheck, responseCheck } from '../../src/pipeline/proving/response-checks.ts';
import type { CompiledResource } from '../../src/policy/model.ts';
import { generator, rng } from '../helpers/answer-generator.ts';

// An answer held as the pieces it arrived in is proven and released as pieces: what is
// written must be byte for byte what the joined answer would have given.

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
const JSON_TYPE = { 'content-type': 'application/json; charset=utf-8' };

function cut(body: Buffer, pieces: number, r: () => number): Buffer[] {
  const at = new Set<number>();
  while (at.size < Math.min(pieces - 1, body.length - 1)) at.add(1 + Math.floor(r() * (body.length - 1)));
  const cuts = [0, ...[...at].sort((a, b) => a - b), body.length];
  return cuts.slice(1).map((end, k) => body.subarray(cuts[k], end));
}

const joined = (parts: readonly Buffer[]): Buffer => Buffer.concat(parts as Buffer[]);
const copyScan = (s: ListScan): ListScan => ({ ...s, ranges: s.ranges.slice(0, 2 * s.count) });

describe('answers held as pieces', () => {
  it('PartsResponse joins its pieces only when the body is read, once', () => {
    const parts = [Buffer.from('{"a"'), Buffer.from(':1}')];
    const res = new PartsResponse(200, JSON_TYPE, parts, 7);
    expect(res.parts).toBe(parts);
    expect(res.body.toString()).toBe('{"a":1}');
    expect(res.body).toBe(res.body);
  });

  it('renderScannedParts writes what renderScannedList writes, for every cut of generated and demo lists', () => {
    const g = generator(21);
    const r = rng(22);
    let compared = 0;
    const bodies: Buffer[] = [];
    for (const n of [0, 1, 2, 3, 50]) for (const perPage of [n, n + 1, 2]) bodies.push(Buffer.from(JSON.stringify(page(demoDevices(['alice'], n), 1, perPage))));
    for (let k = 0; k < 4000; k++) bodies.push(Buffer.from(g.list()));
    bodies.push(Buffer.from(' [ {"referenceId":"alice"} , {"referenceId":"alice"} ] '));
    for (const body of bodies) {
      if (!provenClean(body, FIELDS, 'list', listScan)) continue;
      const scan = copyScan(listScan);
      const want = renderScannedList(body, scan);
      for (const pieces of [2, 3, 8]) {
        const parts = cut(body, pieces, r);
        expect(provenClean(parts, FIELDS, 'list', listScan)).toBe(true);
        expect(copyScan(listScan)).toEqual(scan);
        const out = renderScannedParts(parts, body.length, scan);
        if (out === null) {
          // Only when items are not one comma apart (whitespace between them).
          expect(scan.ranges.some((v, i) => i > 0 && i % 2 === 0 && v !== scan.ranges[i - 1]! + 1)).toBe(true);
          continue;
        }
        expect(joined(out).equals(want)).toBe(true);
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(1000);
  });

  it('the list check over pieces releases what it releases over the joined answer, foreign items still dropped', () => {
    const g = generator(23);
    const r = rng(24);
    const check = listCheck(devices, alice);
    let asParts = 0;
    for (let k = 0; k < 6000; k++) {
      let body: Buffer = Buffer.from(g.list());
      if (g.r() < 0.3) body = g.mutate(body);
      if (body.length < 2) continue;
      const parts = cut(body, 2 + Math.floor(r() * 6), r);
      const held: BufferedResponse = new PartsResponse(200, JSON_TYPE, parts, body.length);
      let fromParts: CheckedResponse | string;
      let fromJoined: CheckedResponse | string;
      try {
        fromParts = check(held) as CheckedResponse;
      } catch (err) {
        fromParts = String(err);
      }
      try {
        fromJoined = checkListFully({ status: 200, headers: JSON_TYPE, body }, devices, alice);
      } catch (err) {
        fromJoined = String(err);
      }
      if (typeof fromJoined === 'string' || typeof fromParts === 'string') {
        expect(fromParts).toBe(fromJoined);
        continue;
      }
      if (fromParts.parts !== undefined) asParts++;
      expect(fromParts.body.equals(fromJoined.body)).toBe(true);
      expect(fromParts.dropped).toBe(fromJoined.dropped);
      expect(fromParts.headers['content-length']).toBe(String(fromJoined.body.length));
    }
    expect(asParts).toBeGreaterThan(300);
  });

  it('a large list in many pieces that must be filtered goes to the worker unjoined (one copy), and comes back filtered', async () => {
    const mixed = page([...demoDevices(['alice', 'bob'], 3000)], 1, 6000);
    const body = Buffer.from(JSON.stringify(mixed));
    expect(body.length).toBeGreaterThan(256 * 1024);
    let joins = 0;
    class Counted extends PartsResponse {
      override get body(): Buffer {
        joins++;
        return super.body;
      }
    }
    const parts = cut(body, MAX_PARTS * 3, rng(9));
    const checked = await listCheck(devices, alice)(new Counted(200, JSON_TYPE, parts, body.length));
    expect(joins).toBe(0);
    const want = checkListFully({ status: 200, headers: JSON_TYPE, body }, devices, alice);
    expect(checked.body.equals(want.body)).toBe(true);
    expect(checked.dropped).toBe(want.dropped);
    expect(checked.dropped).toBeGreaterThan(0);
  });

  it('more pieces than MAX_PARTS are joined; a single answer in pieces is proven without joining', () => {
    const body = Buffer.from(JSON.stringify(page(demoDevices(['alice'], 20), 1, 20)));
    const many = cut(body, MAX_PARTS + 1, rng(5));
    const released = listCheck(devices, alice)(new PartsResponse(200, JSON_TYPE, many, body.length)) as CheckedResponse;
    expect(released.parts).toBeUndefined();
    const few = cut(body, 4, rng(6));
    const released2 = listCheck(devices, alice)(new PartsResponse(200, JSON_TYPE, few, body.length)) as CheckedResponse;
    expect(released2.parts).toBeDefined();
    expect(released2.body.equals(released.body)).toBe(true);
    const one = Buffer.from('{"id":"d","referenceId":"alice","name":"Küche"}');
    const single = new PartsResponse(200, JSON_TYPE, cut(one, 3, rng(7)), one.length);
    // Released as the same pieces, never joined.
    expect((responseCheck(devices, alice)(single) as CheckedResponse).parts).toBe(single.parts);
    const bobs = Buffer.from('{"id":"d","referenceId":"bob"}');
    expect(() => responseCheck(devices, alice)(new PartsResponse(200, JSON_TYPE, cut(bobs, 3, rng(8)), bobs.length))).toThrow(expect.objectContaining({ status: 403 }));
  });
});
