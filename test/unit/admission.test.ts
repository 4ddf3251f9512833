// Invariant 11 (no starvation): the per-key-type admission in front of the backend pool.
import { afterEach, describe, expect, it } from 'vitest';
import type { KeygateError } from '../../src/errors/keygate-error.ts';
import { ADMISSION_CLASSES, Admission, type AdmissionOptions, type AdmissionWaiter, classOf, defaultShares, LOOKUP_CLASS, sharesProblem } from '../../src/pipeline/admission.ts';

const SERVER = classOf('server');
const CONNECT = classOf('connect');
const SCOPED = classOf('scoped');

function options(over: Partial<AdmissionOptions> = {}): AdmissionOptions {
  const connections = over.connections ?? 128;
  return { connections, shares: defaultShares(connections), queueLength: 4, queueTimeoutMs: 10_000, bodyBytes: 1000, ...over };
}

class Recorder implements AdmissionWaiter {
  readonly events: string[] = [];
  admitted(): void {
    this.events.push('admitted');
  }
  refused(err: KeygateError): void {
    this.events.push(`refused ${err.code}`);
  }
}

/** Takes connections of class `c` until refused; returns how many. */
function fill(a: Admission, c: number): number {
  let n = 0;
  while (a.tryAcquire(c)) n++;
  return n;
}

let open: Admission[] = [];
afterEach(() => {
  for (const a of open) a.close();
  open = [];
});
function admission(over: Partial<AdmissionOptions> = {}): Admission {
  const a = new Admission(options(over));
  open.push(a);
  return a;
}

describe('default shares', () => {
  it('give every class a reserve, and their reserves fit in the pool', () => {
    for (const n of [8, 16, 128, 1000]) {
      const shares = defaultShares(n);
      expect(sharesProblem(n, shares)).toBeUndefined();
      for (const c of ADMISSION_CLASSES) expect(shares[c].reserve).toBeGreaterThanOrEqual(1);
    }
  });

  it('at 128 connections: server 32..128, scoped 8..96, connect 4..32, lookups 8..32', () => {
    const s = defaultShares(128);
    expect(s.server).toEqual({ reserve: 32, max: 128 });
    expect(s.scoped).toEqual({ reserve: 8, max: 96 });
    expect(s.connect).toEqual({ reserve: 4, max: 32 });
    expect(s.lookup).toEqual({ reserve: 8, max: 32 });
  });
});

describe('admission', () => {
  it('no number of public requests reaches what server keys reserve', () => {
    const a = admission();
    const connect = fill(a, CONNECT);
    const scoped = fill(a, SCOPED);
    expect(connect).toBe(32); // its max
    expect(connect + scoped).toBeLessThanOrEqual(128 - 32 - 4 - 4 - 8);
    // server keys still get their whole reserve, and what the public keys left
    expect(fill(a, SERVER)).toBe(128 - connect - scoped - 4 - 4 - 8);
  });

  it("a class alone may use the shared part, never another class's reserve", () => {
    const a = admission();
    expect(fill(a, SERVER)).toBe(128 - 4 - 4 - 4 - 8 - 8);
    // every other class still gets its reserve
    expect(fill(a, SCOPED)).toBe(8);
    expect(fill(a, CONNECT)).toBe(4);
    expect(fill(a, LOOKUP_CLASS)).toBe(8);
  });

  it('a release hands the connection to the oldest waiter of the class, in order', () => {
    const a = admission({ connections: 8, shares: { ...defaultShares(8), connect: { reserve: 1, max: 1 } } });
    expect(a.tryAcquire(CONNECT)).toBe(true);
    const first = new Recorder();
    const second = new Recorder();
    a.enqueue(CONNECT, first);
    a.enqueue(CONNECT, second);
    a.release(CONNECT);
    expect(first.events).toEqual(['admitted']);
    expect(second.events).toEqual([]);
    // a newcomer does not overtake the one still waiting
    a.release(CONNECT);
    expect(second.events).toEqual(['admitted']);
    a.release(CONNECT);
    expect(a.tryAcquire(CONNECT)).toBe(true);
  });

  it('a full queue refuses at once with UPSTREAM_SATURATED and Retry-After', () => {
    const a = admission({ queueLength: 2 });
    fill(a, CONNECT);
    a.enqueue(CONNECT, new Recorder());
    a.enqueue(CONNECT, new Recorder());
    const refused = a.enqueue(CONNECT, new Recorder());
    expect('code' in refused && refused.code).toBe('UPSTREAM_SATURATED');
    expect('headers' in refused && refused.headers).toEqual({ 'retry-after': '1' });
    // another class's queue is its own
    fill(a, SCOPED);
    expect('waiter' in a.enqueue(SCOPED, new Recorder())).toBe(true);
  });

  it('a waiter is refused when the queue timeout passes', async () => {
    const a = admission({ queueTimeoutMs: 40 });
    fill(a, CONNECT);
    const w = new Recorder();
    a.enqueue(CONNECT, w);
    await new Promise((r) => setTimeout(r, 100));
    expect(w.events).toEqual(['refused UPSTREAM_SATURATED']);
    a.release(CONNECT); // nobody waits any more: the connection is simply free again
    expect(a.tryAcquire(CONNECT)).toBe(true);
  });

  it('a cancelled waiter is never called and frees its place in the queue', () => {
    const a = admission({ queueLength: 1 });
    fill(a, CONNECT);
    const w = new Recorder();
    const entry = a.enqueue(CONNECT, w);
    if (!('waiter' in entry)) throw new Error('not queued');
    a.cancel(entry);
    expect('waiter' in a.enqueue(CONNECT, new Recorder())).toBe(true);
    a.release(CONNECT);
    expect(w.events).toEqual([]);
  });

  it('a connection freed by one class goes to another class that waits for the shared part', () => {
    const a = admission({ connections: 8, shares: { ...defaultShares(8), server: { reserve: 2, max: 8 } } });
    const server = fill(a, SERVER); // 2 reserved + the shared part
    const s = fill(a, SCOPED); // its reserve only: the shared part is taken
    expect(s).toBe(1);
    const w = new Recorder();
    a.enqueue(SCOPED, w);
    a.release(SERVER);
    expect(server).toBeGreaterThan(2);
    expect(w.events).toEqual(['admitted']);
  });

  it('body memory is bounded per class', () => {
    const a = admission({ bodyBytes: 1000 });
    expect(a.reserveBody(CONNECT, 600)).toBe(true);
    expect(a.reserveBody(CONNECT, 600)).toBe(false);
    expect(a.reserveBody(SCOPED, 600)).toBe(true);
    a.releaseBody(CONNECT, 600);
    expect(a.reserveBody(CONNECT, 1000)).toBe(true);
  });

  it('refuses shares that cannot work', () => {
    expect(sharesProblem(16, { ...defaultShares(16), server: { reserve: 20, max: 20 } })).toMatch(/above the pool/);
    expect(sharesProblem(16, { ...defaultShares(16), server: { reserve: 9, max: 5 } })).toMatch(/above its max/);
    expect(sharesProblem(16, { ...defaultShares(16), server: { reserve: 12, max: 16 } })).toMatch(/reserves add up/);
  });
});

describe('per-key bound (invariant 11 between keys of one type)', () => {
  it('one scoped key holds at most three quarters of the scoped max; another key still gets connections', () => {
    const a = admission({ queueLength: 1000 });
    let alice = 0;
    while (a.tryAcquire(SCOPED, 'alice')) alice++;
    expect(alice).toBe(72); // 96 − ⌈96 / 4⌉
    expect(a.tryAcquire(SCOPED, 'bob')).toBe(true);
    // requests that name no key (unit callers, Keygate's own) are bounded by the share alone
    expect(a.tryAcquire(SCOPED)).toBe(true);
  });

  it('a queue of one key at its bound is not walked on every release: a wake-up finds nobody to admit at once', () => {
    const a = admission({ queueLength: 5000 });
    while (a.tryAcquire(SCOPED, 'alice'));
    const waiters = Array.from({ length: 4000 }, () => new Recorder());
    for (const w of waiters) a.enqueue(SCOPED, w, 'alice');
    // Another key's connections come and go while alice's 4,000 wait: none of hers is admitted.
    let bob = 0;
    for (let i = 0; i < 2000; i++) {
      if (a.tryAcquire(SCOPED, 'bob')) bob++;
      a.release(SCOPED, 'bob');
    }
    expect(bob).toBe(2000);
    expect(waiters.every((w) => w.events.length === 0)).toBe(true);
    // her own release admits her oldest waiter
    a.release(SCOPED, 'alice');
    expect(waiters[0]!.events).toEqual(['admitted']);
    expect(waiters[1]!.events).toEqual([]);
  });

  it("past its bound a key waits in the type's queue (its length the only bound), holding nobody else back", () => {
    const a = admission({ queueLength: 100 });
    while (a.tryAcquire(SCOPED, 'alice'));
    for (let i = 0; i < 100; i++) expect('waiter' in a.enqueue(SCOPED, new Recorder(), 'alice')).toBe(true);
    const refused = a.enqueue(SCOPED, new Recorder(), 'alice');
    expect('code' in refused && refused.code).toBe('UPSTREAM_SATURATED');
    expect('headers' in refused && refused.headers).toEqual({ 'retry-after': '1' });
    // the waiting requests of a key at its bound hold nobody else back
    expect(a.tryAcquire(SCOPED, 'bob')).toBe(true);
  });

  it('a release of another key passes over the waiters of a key at its bound; its own release admits them', () => {
    const a = admission({ connections: 16, shares: { ...defaultShares(16), scoped: { reserve: 1, max: 4 } }, queueLength: 100 });
    expect(a.tryAcquire(SCOPED, 'alice')).toBe(true);
    expect(a.tryAcquire(SCOPED, 'alice')).toBe(true);
    expect(a.tryAcquire(SCOPED, 'alice')).toBe(true); // alice: her bound of 3 (4 − ⌈4 / 4⌉)
    const aliceWaits = new Recorder();
    expect('waiter' in a.enqueue(SCOPED, aliceWaits, 'alice')).toBe(true); // a connection is free, not to her
    expect(a.tryAcquire(SCOPED, 'bob')).toBe(true);
    // the scoped max (4) is reached
    const bobWaits = new Recorder();
    expect('waiter' in a.enqueue(SCOPED, bobWaits, 'bob')).toBe(true);
    a.release(SCOPED, 'bob');
    expect(aliceWaits.events).toEqual([]); // passed over: alice still holds 3
    expect(bobWaits.events).toEqual(['admitted']);
    a.release(SCOPED, 'alice');
    expect(aliceWaits.events).toEqual(['admitted']);
    // admitted waiters are counted as held until they release
    expect(a.tryAcquire(SCOPED, 'alice')).toBe(false);
  });

  it('frees a key when it drops to zero, also when it leaves the queue by timeout or cancel', async () => {
    const a = admission({ connections: 16, shares: { ...defaultShares(16), scoped: { reserve: 1, max: 2 } }, queueTimeoutMs: 30 });
    expect(a.tryAcquire(SCOPED, 'k1')).toBe(true);
    expect(a.tryAcquire(SCOPED, 'k2')).toBe(true);
    const timedOut = new Recorder();
    a.enqueue(SCOPED, timedOut, 'k3');
    const cancelled = a.enqueue(SCOPED, new Recorder(), 'k4');
    expect(a.countedKeys).toBe(4);
    if (!('waiter' in cancelled)) throw new Error('not queued');
    a.cancel(cancelled);
    expect(a.countedKeys).toBe(3);
    await new Promise((r) => setTimeout(r, 80));
    expect(timedOut.events).toEqual(['refused UPSTREAM_SATURATED']);
    expect(a.countedKeys).toBe(2);
    a.release(SCOPED, 'k1');
    a.release(SCOPED, 'k2');
    expect(a.countedKeys).toBe(0);
  });

  it('a flood of distinct keys holds no more entries than requests in flight or queued', () => {
    const a = admission({ queueLength: 8 });
    let taken = 0;
    let refused = 0;
    for (let i = 0; i < 10_000; i++) {
      if (a.tryAcquire(SCOPED, `key-${i}`)) taken++;
      else if ('code' in a.enqueue(SCOPED, new Recorder(), `key-${i}`)) refused++;
    }
    expect(a.countedKeys).toBe(taken + 8);
    expect(refused).toBe(10_000 - taken - 8);
  });

  it('lookups are bounded per key too; server and operator keys only by their share', () => {
    const a = admission();
    let n = 0;
    while (a.tryAcquire(LOOKUP_CLASS, 'alice')) n++;
    expect(n).toBe(24); // 32 − ⌈32 / 4⌉
    expect(a.tryAcquire(LOOKUP_CLASS, 'bob')).toBe(true);
    const b = admission();
    let s = 0;
    while (b.tryAcquire(SERVER, 'the-server-key')) s++;
    expect(s).toBe(128 - 4 - 4 - 4 - 8 - 8);
    expect(b.countedKeys).toBe(0);
  });
});
