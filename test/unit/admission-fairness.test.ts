// Invariant 11 (no starvation) between the parties of one key type: the queue and the
// body memory are shared max-min fairly (admission.ts, upload-budget.ts).
import { afterEach, describe, expect, it } from 'vitest';
import type { KeygateError } from '../../src/errors/keygate-error.ts';
import { Admission, type AdmissionWaiter, classOf, defaultShares } from '../../src/pipeline/admission.ts';
import { type Upload, UploadBudget } from '../../src/pipeline/upload-budget.ts';

const SCOPED = classOf('scoped');
const SERVER = classOf('server');

class Recorder implements AdmissionWaiter {
  readonly events: string[] = [];
  admitted(): void {
    this.events.push('admitted');
  }
  refused(err: KeygateError): void {
    this.events.push(`refused ${err.code}`);
  }
}

let open: Admission[] = [];
afterEach(() => {
  for (const a of open) a.close();
  open = [];
});

/** 32 connections: scoped reserve 2, max 24, one party at most 18; scoped alone reaches 19. */
function admission(queueLength = 6): Admission {
  const a = new Admission({ connections: 32, shares: defaultShares(32), queueLength, queueTimeoutMs: 10_000, bodyBytes: 1000 });
  open.push(a);
  return a;
}

/** Fills the scoped class with `n` connections of each party, round robin. */
function hold(a: Admission, parties: string[], n: number): void {
  for (let i = 0; i < n; i++) for (const p of parties) expect(a.tryAcquire(SCOPED, p)).toBe(true);
}

describe('a full queue', () => {
  it("refuses the newest waiter of the party with most waiting, when the newcomer's party would still have fewer", () => {
    const a = admission(6);
    hold(a, ['m1'], 18);
    expect(a.tryAcquire(SCOPED, 'm2')).toBe(true);
    const m1 = Array.from({ length: 4 }, () => new Recorder());
    const m2 = Array.from({ length: 2 }, () => new Recorder());
    for (const w of m1) a.enqueue(SCOPED, w, 'm1');
    for (const w of m2) a.enqueue(SCOPED, w, 'm2');
    const bob = new Recorder();
    expect('waiter' in a.enqueue(SCOPED, bob, 'bob')).toBe(true);
    // m1's newest gave way, with the 503 a full queue answers
    expect(m1.map((w) => w.events)).toEqual([[], [], [], ['refused UPSTREAM_SATURATED']]);
    expect(a.snapshot().scoped.queued).toBe(6);
    // m2 (2 waiting, 3 with the newcomer) takes one of m1's (3 waiting) no more: as many would wait
    const refused = a.enqueue(SCOPED, new Recorder(), 'm2');
    expect('code' in refused && refused.code).toBe('UPSTREAM_SATURATED');
    expect('code' in refused && refused.headers?.['retry-after']).toBe('1');
  });

  it('parties with as many waiting do not take each other’s places', () => {
    const a = admission(4);
    hold(a, ['x'], 18);
    expect(a.tryAcquire(SCOPED, 'y')).toBe(true);
    const first = ['p1', 'p2', 'p3', 'p4'].map((p) => {
      const w = new Recorder();
      a.enqueue(SCOPED, w, p);
      return w;
    });
    expect('code' in a.enqueue(SCOPED, new Recorder(), 'p5')).toBe(true);
    for (const w of first) expect(w.events).toEqual([]);
  });
});

describe('a released connection', () => {
  it('goes to the oldest waiter of the party holding the fewest connections', () => {
    const a = admission(8);
    hold(a, ['m1'], 10);
    hold(a, ['m2'], 9);
    const m1 = new Recorder();
    const m2 = new Recorder();
    const bob = new Recorder();
    a.enqueue(SCOPED, m1, 'm1');
    a.enqueue(SCOPED, m2, 'm2');
    a.enqueue(SCOPED, bob, 'bob');
    a.release(SCOPED, 'm1');
    expect(bob.events).toEqual(['admitted']);
    expect(m1.events).toEqual([]);
    a.release(SCOPED, 'm1');
    // m1 holds 8, m2 9: m1's waiter, though m2's is as old
    expect(m1.events).toEqual(['admitted']);
    a.release(SCOPED, 'bob');
    expect(m2.events).toEqual(['admitted']);
  });

  it('classes without a per-party bound stay first in, first out', () => {
    const a = admission(8);
    let n = 0;
    while (a.tryAcquire(SERVER, n % 2 === 0 ? 's1' : 's2')) n++;
    const first = new Recorder();
    const second = new Recorder();
    a.enqueue(SERVER, first, 's1');
    a.enqueue(SERVER, second, 's2');
    a.release(SERVER, 's2');
    expect(first.events).toEqual(['admitted']);
    expect(second.events).toEqual([]);
  });
});

class FakeUpload implements Upload {
  uploadParty: string | undefined = undefined;
  uploadBytes = 0;
  uploadOlder: Upload | null = null;
  uploadNewer: Upload | null = null;
  uploadPartyBytes = 0;
  cut = false;
  readonly name: string;
  uploadCuttable = true;
  constructor(name: string) {
    this.name = name;
  }
  cutUpload(): void {
    this.cut = true;
  }
}

describe('the upload budget', () => {
  it('lets one party use all of it, and refuses that party past it', () => {
    const b = new UploadBudget(1000);
    const ups = Array.from({ length: 10 }, (_, i) => new FakeUpload(`a${i}`));
    for (const u of ups) expect(b.reserve(100, u, 'alice')).toBe(true);
    expect(b.reserve(100, new FakeUpload('a10'), 'alice')).toBe(false);
    expect(ups.some((u) => u.cut)).toBe(false);
    expect(b.heldBy('alice')).toBe(1000);
  });

  it("cuts the heaviest party's newest cuttable upload for a lighter party, and only as much as needed", () => {
    const b = new UploadBudget(1000);
    const alice = Array.from({ length: 6 }, (_, i) => new FakeUpload(`a${i}`));
    const mallory = Array.from({ length: 4 }, (_, i) => new FakeUpload(`m${i}`));
    for (const u of alice) b.reserve(100, u, 'alice');
    for (const u of mallory) b.reserve(100, u, 'mallory');
    alice[5]!.uploadCuttable = false; // on its way to the backend
    const bob = new FakeUpload('bob');
    expect(b.reserve(150, bob, 'bob')).toBe(true);
    // a5 is past cutting; a4 freed 100, 50 more were needed and alice (500) was still the heaviest
    expect(alice.filter((u) => u.cut).map((u) => u.name)).toEqual(['a3', 'a4']);
    expect(mallory.some((u) => u.cut)).toBe(false);
    expect(b.bytes).toBe(1000 - 200 + 150);
    expect(b.heldBy('alice')).toBe(400);
    expect(b.heldBy('bob')).toBe(150);
    // mallory (400 + 200) would hold more than alice (400): refused, nobody cut
    expect(b.reserve(200, new FakeUpload('m4'), 'mallory')).toBe(false);
    expect(mallory.some((u) => u.cut)).toBe(false);
    expect(alice.filter((u) => u.cut)).toHaveLength(2);
  });

  it('releases in any order and forgets a party that holds nothing', () => {
    const b = new UploadBudget(1000);
    const u = [new FakeUpload('1'), new FakeUpload('2'), new FakeUpload('3')];
    for (const x of u) b.reserve(10, x, 'p');
    b.release(u[1]!);
    expect(b.heldBy('p')).toBe(20);
    b.release(u[2]!);
    expect(b.heldBy('p')).toBe(10);
    b.release(u[2]!); // twice: nothing
    b.release(u[0]!);
    expect(b.heldBy('p')).toBe(0);
    expect(b.bytes).toBe(0);
  });

  it('bytes reserved without an upload count, and are never cut', () => {
    const a = admission();
    expect(a.reserveBody(SCOPED, 900)).toBe(true);
    const bob = new FakeUpload('bob');
    expect(a.reserveBody(SCOPED, 200, bob, 'bob')).toBe(false);
    a.releaseBody(SCOPED, 900);
    expect(a.reserveBody(SCOPED, 200, bob, 'bob')).toBe(true);
    a.releaseBody(SCOPED, 200, bob);
    expect(a.snapshot().scoped.bodyBytes).toBe(0);
  });
});
