// What each per-key memo of the hot path relies on (docs/hot-path.md): the inputs it is
// keyed by are immutable, replaced rather than changed, and a new input is a new entry.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Principal, testPrincipal } from '../../src/keys/principal.ts';
import { authorize, decide } from '../../src/pipeline/authorize.ts';
import { canonicalize } from '../../src/pipeline/canonical-path.ts';
import type { BufferedResponse } from '../../src/pipeline/forward.ts';
import { headerClass } from '../../src/pipeline/forwarding/header-classes.ts';
import { mutateQuery } from '../../src/pipeline/mutate.ts';
import { type CheckedResponse, listCheck } from '../../src/pipeline/proving/response-checks.ts';
import { compilePolicy } from '../../src/policy/compile.ts';
import { loadPolicy } from '../../src/policy/load.ts';
import { PairMemo } from '../../src/util/pair-memo.ts';
import { POLICIES } from '../helpers/sidecar.ts';

const texture = loadPolicy(join(POLICIES, 'texture.yaml'));
const scoped = (referenceId: string): Principal => testPrincipal({ id: `key_${referenceId}`, type: 'scoped', referenceId });
const conditionsOf = (policy: typeof texture, p: Principal) => authorize(policy, p, 'GET', canonicalize('/v1/devices')).conditions!;
const answer = (body: string): BufferedResponse => ({ status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from(body) });
const ids = (r: CheckedResponse): string[] => (JSON.parse(r.body.toString()) as { data: Array<{ id: string }> }).data.map((d) => d.id);

describe('the resolved conditions (authorize): one frozen list per key and role', () => {
  it('is the same list for the same principal and role, frozen to its values', () => {
    const alice = scoped('alice');
    const a = conditionsOf(texture, alice);
    expect(conditionsOf(texture, alice)).toBe(a);
    expect(a).toEqual([{ attribute: 'referenceId', values: ['alice'] }]);
    expect(Object.isFrozen(a) && a.every((c) => Object.isFrozen(c) && Object.isFrozen(c.values))).toBe(true);
  });

  it('is a new list for a new principal object (a cache entry that expired and was read again) and for a reloaded role', () => {
    const a = conditionsOf(texture, scoped('alice'));
    const again = conditionsOf(texture, scoped('alice'));
    expect(again).not.toBe(a);
    expect(again).toEqual(a);
    const reloaded = loadPolicy(join(POLICIES, 'texture.yaml'));
    expect(conditionsOf(reloaded, scoped('alice'))).not.toBe(a);
  });
});

describe('the refusals naming a route (authorize): one frozen error per compiled route', () => {
  it('is shared by every refusal on the route, names that route, and a reloaded route gets its own', () => {
    const connect: Principal = testPrincipal({ id: 'key_c', type: 'connect' });
    const list = decide(texture, connect, 'GET', canonicalize('/v1/devices'));
    expect(decide(texture, connect, 'GET', canonicalize('/v1/devices'))).toBe(list);
    expect(Object.isFrozen(list)).toBe(true);
    expect(list).toMatchObject({ code: 'ACTION_NOT_ALLOWED', detail: 'no role grants devices:list' });
    expect(decide(texture, connect, 'GET', canonicalize('/v1/sites'))).toMatchObject({ detail: 'no role grants sites:list' });
    const reloaded = loadPolicy(join(POLICIES, 'texture.yaml'));
    expect(decide(reloaded, connect, 'GET', canonicalize('/v1/devices'))).not.toBe(list);
  });
});

describe("what is derived from a condition list's identity: the filter text (mutate), the list check (response-checks)", () => {
  it('each key gets its own filter and its own check, whichever was built first', () => {
    const alice = conditionsOf(texture, scoped('alice'));
    const bob = conditionsOf(texture, scoped('bob'));
    const devices = texture.resources.get('devices')!;
    for (let round = 0; round < 2; round++) {
      expect(mutateQuery('page=2&referenceId=x', alice)).toBe('referenceId=alice&page=2');
      expect(mutateQuery('page=2&referenceId=x', bob)).toBe('referenceId=bob&page=2');
    }
    expect(listCheck(devices, alice)).toBe(listCheck(devices, alice));
    expect(listCheck(devices, bob)).not.toBe(listCheck(devices, alice));
    const both = answer('{"data":[{"id":"a1","referenceId":"alice"},{"id":"b1","referenceId":"bob"}]}');
    expect(ids(listCheck(devices, alice)(both) as CheckedResponse)).toEqual(['a1']);
    expect(ids(listCheck(devices, bob)(both) as CheckedResponse)).toEqual(['b1']);
  });
});

describe('the scan fields per compiled resource (clean-scan)', () => {
  const policyWithField = (field: string) =>
    compilePolicy([
      {
        file: 'p.yaml',
        text: `version: 1\nresources:\n  things:\n    attributes: { fields: { owner: ${field} } }\n    actions:\n      list: [{ route: GET /things, conditions: filter }]\nroles:\n  mine:\n    permissions: [things:list]\n    conditions: { owner: ['{key.referenceId}'] }\nkeyTypes: { server: [], connect: [], scoped: [mine], operator: [], access-token: [] }\n`,
      },
    ]);

  it('a reloaded resource that maps the attribute to another field is scanned for the new field', () => {
    // Every item is alice's by ownerId and bob's by userId: a scan of the old field would prove the list clean.
    const body = answer('{"data":[{"id":"1","ownerId":"alice","userId":"bob"}]}');
    for (const [field, kept] of [
      ['ownerId', ['1']],
      ['userId', []],
      ['ownerId', ['1']],
    ] as const) {
      const policy = policyWithField(field);
      const c = authorize(policy, scoped('alice'), 'GET', canonicalize('/things')).conditions!;
      expect(ids(listCheck(policy.resources.get('things')!, c)(body) as CheckedResponse), field).toEqual(kept);
    }
  });
});

describe('header classes (header-classes): remembered per spelling, bounded', () => {
  it('a flood of invented names clears the table; a known name keeps its class', () => {
    const before = headerClass('Texture-Api-Key');
    for (let i = 0; i < 5000; i++) headerClass(`X-Invented-${i}`);
    const after = headerClass('Texture-Api-Key');
    expect(after).toEqual(before);
    expect(Object.isFrozen(after)).toBe(true);
    expect(headerClass('X_Forwarded_For')).toMatchObject({ name: 'x_forwarded_for', underscored: true });
  });
});

describe('PairMemo', () => {
  it('computes once per pair, and a new first key (a reloaded resource) starts afresh', () => {
    let made = 0;
    const memo = new PairMemo<object, string, number>(() => new Map());
    const make = (_a: object, b: string): number => {
      made++;
      return b.length;
    };
    const a = {};
    expect([memo.get(a, 'xy', make), memo.get(a, 'xy', make), memo.get(a, 'xyz', make)]).toEqual([2, 2, 3]);
    expect(made).toBe(2);
    memo.get({}, 'xy', make);
    expect(made).toBe(3);
  });
});
