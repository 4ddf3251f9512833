import { describe, expect, it } from 'vitest';
import type { Condition } from '../../src/pipeline/authorize.ts';
import type { BufferedResponse } from '../../src/pipeline/forward.ts';
import { type CheckedResponse, checkListFully, listCheck } from '../../src/pipeline/proving/response-checks.ts';
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
const A1 = '{"id":"a1","referenceId":"alice"}';
const A2 = '{"id":"a2","referenceId":"alice","n":[1, 2]}';
const B1 = '{"id":"b1","referenceId":"bob"}';

const check = (body: string, headers: Record<string, string> = {}): CheckedResponse =>
  listCheck(devices, alice)({ status: 200, headers: { 'content-type': 'application/json', ...headers }, body: Buffer.from(body) }) as CheckedResponse;
const text = (r: BufferedResponse): string => r.body.toString();

describe('checked lists are written by Keygate: nothing depends on items the key may not see', () => {
  it('dropped or never there: the same bytes, the same headers', () => {
    const withBob = check(`{"data":[${A1}, ${B1} ,${A2}],"page":1,"perPage":50,"totalItems":3,"totalPages":1,"hasMore":true}`, {
      etag: '"3"',
      'x-total-count': '3',
      'last-modified': 'x',
      'cache-control': 'no-cache',
    });
    const without = check(`{"data":[${A1},${A2}],"page":1,"perPage":50,"totalItems":2,"totalPages":1}`, { etag: '"2"', 'x-total-count': '2', 'cache-control': 'no-cache' });
    expect(text(withBob)).toBe(`{"data":[${A1},${A2}],"page":1,"perPage":50,"totalItems":2,"totalPages":1}`);
    expect(text(withBob)).toBe(text(without));
    expect(withBob.headers).toEqual(without.headers);
    expect(withBob.headers).toEqual({ 'content-type': 'application/json', 'cache-control': 'no-cache', 'content-length': String(withBob.body.length) });
    expect([withBob.dropped, without.dropped]).toEqual([1, 0]);
  });

  it('a bare array stays a bare array, items as the backend wrote them', () => {
    expect(text(check(`[ ${B1}, ${A2} ]`))).toBe(`[${A2}]`);
    expect(text(check(`[${A1},${A2}]`))).toBe(`[${A1},${A2}]`);
  });

  it('an answer already in that form is released without a copy', () => {
    const body = Buffer.from(`{"data":[${A1}],"page":1,"perPage":50,"totalItems":1,"totalPages":1}`);
    const r = listCheck(devices, alice)({ status: 200, headers: { 'content-type': 'application/json' }, body });
    expect((r as BufferedResponse).body).toBe(body);
  });

  it.each([
    // [kept items, page, perPage] → totalItems, totalPages
    [0, 1, 50, 0, 1],
    [2, 1, 50, 2, 1],
    [20, 3, 50, 120, 3],
    [50, 1, 50, 51, 2],
    [50, 2, 50, 101, 3],
    [0, 3, 50, 100, 2],
    [2, null, null, 2, 1],
    [2, 2, null, 2, 1],
  ])('%i items of page %s (perPage %s): totalItems %i, totalPages %i', (n, page, perPage, totalItems, totalPages) => {
    const items = Array.from({ length: n }, () => A1).join(',');
    const body = `{"data":[${items}]${page === null ? '' : `,"page":${page}`}${perPage === null ? '' : `,"perPage":${perPage}`},"totalItems":999,"totalPages":99}`;
    for (const r of [check(body), checkListFully({ status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from(body) }, devices, alice)]) {
      const out = JSON.parse(text(r)) as Record<string, unknown>;
      expect([out.totalItems, out.totalPages]).toEqual([totalItems, totalPages]);
      expect(out.page).toBe(page ?? undefined);
      expect(out.perPage).toBe(perPage ?? undefined);
    }
  });

  it('page and perPage that are not whole numbers from 1 to 10^7 are left out', () => {
    for (const v of ['0', '-1', '1.5', '1e1', '"2"', '100000000', 'null']) {
      const out = JSON.parse(text(check(`{"data":[${A1}],"page":${v},"perPage":${v}}`))) as Record<string, unknown>;
      expect(out, v).toEqual({ data: [{ id: 'a1', referenceId: 'alice' }], totalItems: 1, totalPages: 1 });
    }
  });
});
