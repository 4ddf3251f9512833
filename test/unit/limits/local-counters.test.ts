// GCRA in this process's counters, on a clock the test moves: a burst of `limit`, then one
// per `window / limit`; two rules counted together or not at all; the table bounded.
import { describe, expect, it } from 'vitest';
import { COUNTERS_PER_RULE, LocalCounters } from '../../../src/limits/local-counters.ts';
import { compilePolicy } from '../../../src/policy/compile.ts';

const POLICY =
  "version: 1\nresources:\n  devices:\n    actions:\n      list: [GET /v1/devices]\nroles:\n  all:\n    permissions: ['*']\nkeyTypes:\n  server: [all]\n  connect: []\n  scoped: []\n  operator: [all]\n  access-token: []\nrateLimits:\n  keyTypes:\n    scoped: { limit: 3, window: 1s }\n    connect: { limit: 10, window: 1m }\n  actions:\n    devices:list: { limit: 2, window: 1s }\n";
const limits = compilePolicy([{ file: 'p.yaml', text: POLICY }]).rateLimits;
const three = limits.keyTypes.get('scoped')!;
const ten = limits.keyTypes.get('connect')!;
const two = limits.actions.get('devices:list')!;

function clock(): { now: () => number; at: number } {
  const c = { at: 1_000_000, now: () => c.at };
  return c;
}

describe('LocalCounters (GCRA)', () => {
  it('lets `limit` through at once, with the remaining count and the time until the budget is whole', () => {
    const c = clock();
    const counters = new LocalCounters(c.now);
    const seen = [];
    for (let i = 0; i < 3; i++) {
      const v = counters.take(three, 'k', null, '');
      seen.push([v.allowed, v.remaining0, Math.round(v.resetMs0)]);
    }
    expect(seen).toEqual([
      [true, 2, 333],
      [true, 1, 667],
      [true, 0, 1000],
    ]);
    const refused = counters.take(three, 'k', null, '');
    expect([refused.allowed, refused.refusedBy?.name, Math.round(refused.waitMs)]).toEqual([false, 'keyTypes.scoped', 333]);
  });

  it('gives back one request per window / limit, never more than the limit in any window', () => {
    const c = clock();
    const counters = new LocalCounters(c.now);
    let allowed = 0;
    // 10 s of a client asking every 10 ms: at most 3 + 10 s × 3/s.
    for (let t = 0; t < 10_000; t += 10) {
      c.at = 1_000_000 + t;
      if (counters.take(three, 'k', null, '').allowed) allowed++;
    }
    expect(allowed).toBe(3 + 29);
    // Idle a whole window: the full burst again, not more.
    c.at += 1000;
    const burst = Array.from({ length: 5 }, () => counters.take(three, 'k', null, '').allowed);
    expect(burst).toEqual([true, true, true, false, false]);
  });

  it('counts each subject apart, and each rule apart', () => {
    const counters = new LocalCounters(clock().now);
    for (let i = 0; i < 3; i++) expect(counters.take(three, 'a', null, '').allowed).toBe(true);
    expect(counters.take(three, 'a', null, '').allowed).toBe(false);
    expect(counters.take(three, 'b', null, '').allowed).toBe(true);
    expect(counters.take(ten, 'a', null, '').allowed).toBe(true);
  });

  it('with two rules: allowed only when both allow; a refusal counts against neither', () => {
    const c = clock();
    const counters = new LocalCounters(c.now);
    const take = () => {
      const v = counters.take(ten, 'key', two, 'key 10.0.0.1');
      return v.allowed ? `ok ${v.remaining0}/${v.remaining1}` : `refused by ${v.refusedBy?.name}`;
    };
    expect([take(), take(), take(), take()]).toEqual(['ok 9/1', 'ok 8/0', 'refused by actions.devices:list', 'refused by actions.devices:list']);
    // The refused two did not spend the key-wide budget: 8 left before this one.
    c.at += 1000;
    expect(take()).toBe('ok 7/1');
  });

  it(`holds at most ${COUNTERS_PER_RULE} counters per rule, forgetting the least recently seen`, () => {
    const counters = new LocalCounters(clock().now);
    for (let i = 0; i < COUNTERS_PER_RULE + 1000; i++) counters.take(three, `key_${i}`, null, '');
    expect(counters.size).toBe(COUNTERS_PER_RULE);
  });

  it('a request under its limit allocates nothing once its counter exists (the verdict is reused)', () => {
    const counters = new LocalCounters(clock().now);
    const first = counters.take(ten, 'k', null, '');
    expect(counters.take(ten, 'k', null, '')).toBe(first);
  });
});
