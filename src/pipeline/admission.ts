import { KeygateError } from '../errors/keygate-error.ts';
import { KEY_TYPES, type KeyType } from '../keys/key-record.ts';
import { type Upload, UploadBudget } from './upload-budget.ts';

/**
 * Who competes for the backend: one class per key type, plus Keygate's own attribute
 * lookups (issued on behalf of keys with conditions, before their request is forwarded).
 */
export const ADMISSION_CLASSES = [...KEY_TYPES, 'lookup'] as const;
export type AdmissionClass = (typeof ADMISSION_CLASSES)[number];

const CLASS_INDEX: Readonly<Record<AdmissionClass, number>> = Object.freeze(Object.fromEntries(ADMISSION_CLASSES.map((c, i) => [c, i])) as Record<AdmissionClass, number>);
export const LOOKUP_CLASS = CLASS_INDEX.lookup;

export function classOf(type: KeyType): number {
  return CLASS_INDEX[type];
}

/** Classes of public keys (their holders are anyone): their bodies are read in full before a connection is taken. */
const PUBLIC = new Uint8Array(ADMISSION_CLASSES.length);
PUBLIC[CLASS_INDEX.connect] = 1;
PUBLIC[CLASS_INDEX.scoped] = 1;

export function isPublicClass(c: number): boolean {
  return PUBLIC[c] === 1;
}

/**
 * Classes whose keys are each held to part of the class's share (invariant 11: no key
 * takes what the other keys of its type need). Server and operator keys are the account's
 * own systems, usually one key doing all the work: they are bounded by their share alone.
 */
const PER_KEY = new Uint8Array(ADMISSION_CLASSES.length);
PER_KEY[CLASS_INDEX.connect] = 1;
PER_KEY[CLASS_INDEX.scoped] = 1;
PER_KEY[CLASS_INDEX['access-token']] = 1;
PER_KEY[CLASS_INDEX.lookup] = 1;

/**
 * The most connections one key may hold in a class that bounds its keys: three quarters
 * of the class's max (at least one), so a quarter always stays for the type's other keys,
 * however long one key's requests hold their connections. Its further requests wait in
 * the class's queue (its length and timeout bound them), passed by other keys' requests.
 * Three quarters, not a half: one key of an app doing all the work (the bench's 64
 * connections against the scoped 96) is not slowed while nobody else needs the rest.
 */
function perKeyBound(share: Share): number {
  return Math.max(1, share.max - Math.ceil(share.max / 4));
}

/** A class's part of the pool: `reserve` connections no other class may take, at most `max` in all. */
export interface Share {
  readonly reserve: number;
  readonly max: number;
}

export type Shares = Readonly<Record<AdmissionClass, Share>>;

/**
 * Default shares as fractions of the pool (reserve, max). Server keys (the customer's own
 * backend) keep a quarter for themselves and may use whatever the others leave; the public
 * types are held to part of the pool so that no number of public clients reaches the
 * server keys' quarter; every class keeps a few connections of its own.
 */
const DEFAULT_FRACTIONS: Readonly<Record<AdmissionClass, readonly [number, number]>> = {
  server: [1 / 4, 1],
  operator: [1 / 32, 1 / 2],
  'access-token': [1 / 32, 1 / 2],
  connect: [1 / 32, 1 / 4],
  scoped: [1 / 16, 3 / 4],
  lookup: [1 / 16, 1 / 4],
};

/** The smallest pool that leaves every class at least one reserved connection and one more to share. */
export const MIN_CONNECTIONS = ADMISSION_CLASSES.length + 2;

export function defaultShares(connections: number): Record<AdmissionClass, Share> {
  const out = {} as Record<AdmissionClass, Share>;
  for (const c of ADMISSION_CLASSES) {
    const [r, m] = DEFAULT_FRACTIONS[c];
    const reserve = Math.max(1, Math.floor(connections * r));
    out[c] = { reserve, max: Math.max(reserve, Math.floor(connections * m)) };
  }
  return out;
}

/** Why a set of shares cannot work, or undefined when it can. */
export function sharesProblem(connections: number, shares: Shares): string | undefined {
  let reserved = 0;
  for (const c of ADMISSION_CLASSES) {
    const s = shares[c];
    if (s.reserve > s.max) return `${c}: reserve ${s.reserve} is above its max ${s.max}`;
    if (s.max > connections) return `${c}: max ${s.max} is above the pool of ${connections} connections`;
    reserved += s.reserve;
  }
  if (reserved > connections) return `the reserves add up to ${reserved}, more than the pool of ${connections} connections`;
  return undefined;
}

export interface AdmissionOptions {
  /** The backend pool's size: admitted requests never exceed it, so undici never queues. */
  readonly connections: number;
  readonly shares: Shares;
  /** Requests of one class waiting for a connection, at most. */
  readonly queueLength: number;
  /** How long a request may wait for a connection before it is answered 503. */
  readonly queueTimeoutMs: number;
  /** Bytes of request bodies one class may hold while Keygate reads them before dispatch. */
  readonly bodyBytes: number;
}

/** Told when a queued request gets its connection, or when it will not. Exactly one call. */
export interface AdmissionWaiter {
  admitted(): void;
  refused(err: KeygateError): void;
}

/** A place in a class's queue (allocated only when the pool is busy). */
export class QueueEntry {
  prev: QueueEntry | null = null;
  next: QueueEntry | null = null;
  readonly c: number;
  readonly deadline: number;
  readonly waiter: AdmissionWaiter;
  /** The key the request is made for (counted against its per-key bound), or undefined. */
  readonly key: string | undefined;
  queued = true;

  constructor(c: number, deadline: number, waiter: AdmissionWaiter, key: string | undefined) {
    this.c = c;
    this.deadline = deadline;
    this.waiter = waiter;
    this.key = key;
  }
}

function increment(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

/** One less for `key`; its entry goes when it reaches zero. */
function decrement(counts: Map<string, number>, key: string): void {
  const n = counts.get(key);
  if (n === undefined) return;
  if (n <= 1) counts.delete(key);
  else counts.set(key, n - 1);
}

function saturated(detail: string): KeygateError {
  return Object.freeze(new KeygateError('UPSTREAM_SATURATED', { detail, headers: { 'retry-after': '1' } }));
}

const QUEUE_FULL = saturated('queue full');
const QUEUE_TIMEOUT = saturated('no backend connection within the queue timeout');
const BODIES_FULL = Object.freeze(new KeygateError('UPLOADS_SATURATED', { detail: 'body memory of this key type in use', headers: { 'retry-after': '1' } }));
const UPLOAD_CUT = Object.freeze(
  new KeygateError('UPLOADS_SATURATED', { detail: "cut to make room for the upload of a party holding less of this key type's body memory", headers: { 'retry-after': '1' } }),
);
const QUEUE_YIELDED = saturated("queue full: this request's party had the most of it waiting, and made room for a party with fewer");

/**
 * Per-class admission in front of the backend pool. A request takes a connection from its
 * class's reserve first, then from the shared part (what no class reserves and no class
 * uses of its reserve), never above its class's max; otherwise it waits in its class's
 * queue (bounded in length and in time), and a full queue answers at once. So a class can
 * always get its reserve however many requests the others have in flight, and the work
 * is conserving: an idle class's shared part is used by the busy ones.
 *
 * Within a class that bounds its keys (PER_KEY), one key (a party: askerOf) holds at most
 * perKeyBound(share) connections: its next requests wait in the class's queue
 * and are skipped by wake-ups until one of its own comes back, so the other keys' requests
 * go past them. The queue so holds no waiter that could take a free connection: a request
 * whose key is below its bound takes one whenever its class may. A key's counts live in
 * map entries only while above zero: the maps never hold more entries than requests in
 * flight or queued.
 *
 * Between the parties of such a class the queue is max-min fair, so that no number of
 * parties, each within its bound, starves another: a free connection goes to the oldest
 * waiter of the party holding the fewest (#nextWaiter), and a full queue takes a party's
 * request by refusing the newest of the party with the most waiting when that is more
 * than the newcomer's party would (#yieldPlace). Body memory is shared the same way
 * (upload-budget.ts).
 *
 * On the warm path (a connection free) acquire and release are a few integer operations
 * on typed arrays, and one map lookup for a bounded key; queues, timers and allocations
 * exist only while a class waits.
 */
export class Admission {
  readonly #capacity: number;
  readonly #reserve: Int32Array;
  readonly #max: Int32Array;
  readonly #active: Int32Array;
  readonly #queued: Int32Array;
  /** Per class: the memory of the bodies Keygate reads before dispatch, shared fairly between parties. */
  readonly #uploads: UploadBudget[];
  readonly #heads: (QueueEntry | null)[];
  readonly #tails: (QueueEntry | null)[];
  readonly #timers: (NodeJS.Timeout | undefined)[];
  readonly #queueLength: number;
  readonly #queueTimeoutMs: number;
  /** Per class: the most one key may hold or wait for (0: no per-key bound). */
  readonly #keyBound: Int32Array;
  /** Per class: key → connections it holds, and key → its requests waiting (entries above zero only). */
  readonly #held: Map<string, number>[];
  readonly #queuedOf: Map<string, number>[];
  #total = 0;
  /** Σ over classes of max(0, reserve − active): connections held back for classes below their reserve. */
  #unusedReserve = 0;
  #waiting = 0;
  #waking = false;
  #wakeAgain = false;

  constructor(options: AdmissionOptions) {
    const n = ADMISSION_CLASSES.length;
    this.#capacity = options.connections;
    this.#reserve = new Int32Array(n);
    this.#max = new Int32Array(n);
    this.#active = new Int32Array(n);
    this.#queued = new Int32Array(n);
    this.#uploads = Array.from({ length: n }, () => new UploadBudget(options.bodyBytes));
    this.#heads = new Array<QueueEntry | null>(n).fill(null);
    this.#tails = new Array<QueueEntry | null>(n).fill(null);
    this.#timers = new Array<NodeJS.Timeout | undefined>(n).fill(undefined);
    this.#queueLength = options.queueLength;
    this.#queueTimeoutMs = options.queueTimeoutMs;
    this.#keyBound = new Int32Array(n);
    this.#held = Array.from({ length: n }, () => new Map<string, number>());
    this.#queuedOf = Array.from({ length: n }, () => new Map<string, number>());
    ADMISSION_CLASSES.forEach((c, i) => {
      if (PER_KEY[i] === 1) this.#keyBound[i] = perKeyBound(options.shares[c]);
      this.#reserve[i] = options.shares[c].reserve;
      this.#max[i] = options.shares[c].max;
      this.#unusedReserve += options.shares[c].reserve;
    });
    const problem = sharesProblem(options.connections, options.shares);
    if (problem !== undefined) throw new Error(`admission shares: ${problem}`);
  }

  #canTake(c: number): boolean {
    const active = this.#active[c]!;
    return active < this.#reserve[c]! || (active < this.#max[c]! && this.#total + this.#unusedReserve < this.#capacity);
  }

  #take(c: number): void {
    const active = this.#active[c]!;
    if (active < this.#reserve[c]!) this.#unusedReserve--;
    this.#active[c] = active + 1;
    this.#total++;
  }

  /** Whether class `c` counts `key` (it bounds its keys and one is named). */
  #counts(c: number, key: string | undefined): key is string {
    return key !== undefined && this.#keyBound[c] !== 0;
  }

  /** `key` holds as many connections of class `c` as it may (never for a key the class does not count). */
  #atBound(c: number, key: string | undefined): boolean {
    return this.#counts(c, key) && (this.#held[c]!.get(key) ?? 0) >= this.#keyBound[c]!;
  }

  /**
   * Takes a connection for class `c` if one is free to it and `key` (the key the request
   * is made for, if any) holds less than its bound. Whoever waits in the class's queue then
   * is a request of a key at its bound (see the class comment), so nobody is overtaken.
   * False: the caller enqueues.
   */
  tryAcquire(c: number, key?: string): boolean {
    if (!this.#canTake(c) || this.#atBound(c, key)) return false;
    if (this.#counts(c, key)) increment(this.#held[c]!, key);
    this.#take(c);
    return true;
  }

  /** Gives back a connection taken by tryAcquire or handed over by `admitted()`, with the same `key`. */
  release(c: number, key?: string): void {
    if (this.#counts(c, key)) decrement(this.#held[c]!, key);
    const active = this.#active[c]! - 1;
    this.#active[c] = active;
    this.#total--;
    if (active < this.#reserve[c]!) this.#unusedReserve++;
    if (this.#waiting !== 0) this.#wake(c);
  }

  /**
   * Waits for a connection of class `c`: the waiter is told `admitted()` (holding it) or
   * `refused()` once the queue timeout passes. A full queue refuses at once (returned),
   * unless `key`'s party has fewer waiting than another party (#yieldPlace); an admitted
   * waiter releases with the same `key`.
   */
  enqueue(c: number, waiter: AdmissionWaiter, key?: string): QueueEntry | KeygateError {
    if (this.#queued[c]! >= this.#queueLength && !this.#yieldPlace(c, key)) return QUEUE_FULL;
    if (this.#counts(c, key)) increment(this.#queuedOf[c]!, key);
    const entry = new QueueEntry(c, performance.now() + this.#queueTimeoutMs, waiter, key);
    const tail = this.#tails[c]!;
    if (tail === null) {
      this.#heads[c] = entry;
      this.#arm(c);
    } else {
      tail.next = entry;
      entry.prev = tail;
    }
    this.#tails[c] = entry;
    this.#queued[c]!++;
    this.#waiting++;
    return entry;
  }

  /**
   * Max-min fairness of a full queue: when `key`'s party, with the newcomer, would still
   * have fewer requests waiting than the party with the most, that party's newest waiter is
   * refused (503, as a full queue answers) and its place is the newcomer's. Otherwise
   * false: the newcomer is refused (so parties with as many waiting do not take each
   * other's places for nothing).
   * Only when the queue is full: a walk over the parties waiting (at most the queue's
   * length), and back from the tail to the heaviest party's newest entry.
   */
  #yieldPlace(c: number, key: string | undefined): boolean {
    if (!this.#counts(c, key)) return false;
    const counts = this.#queuedOf[c]!;
    let most = (counts.get(key) ?? 0) + 1;
    let heaviest: string | undefined;
    for (const [k, n] of counts)
      if (n > most) {
        most = n;
        heaviest = k;
      }
    if (heaviest === undefined) return false;
    let entry = this.#tails[c] ?? null;
    while (entry !== null && entry.key !== heaviest) entry = entry.prev;
    if (entry === null) return false;
    this.#unlink(entry);
    entry.waiter.refused(QUEUE_YIELDED);
    return true;
  }

  /** Leaves the queue (the client went away); nothing is called on the waiter. */
  cancel(entry: QueueEntry): void {
    if (!entry.queued) return;
    this.#unlink(entry);
  }

  #unlink(entry: QueueEntry): void {
    const c = entry.c;
    entry.queued = false;
    if (entry.prev === null) this.#heads[c] = entry.next;
    else entry.prev.next = entry.next;
    if (entry.next === null) this.#tails[c] = entry.prev;
    else entry.next.prev = entry.prev;
    entry.prev = entry.next = null;
    if (this.#counts(c, entry.key)) decrement(this.#queuedOf[c]!, entry.key);
    this.#queued[c]!--;
    this.#waiting--;
    if (this.#heads[c] === null) {
      clearTimeout(this.#timers[c]);
      this.#timers[c] = undefined;
    }
  }

  /** One timer per class, for its oldest waiter: entries of a class share one timeout, so the queue is in deadline order. */
  #arm(c: number): void {
    const head = this.#heads[c];
    if (head === null || head === undefined || this.#timers[c] !== undefined) return;
    const timer = setTimeout(
      () => {
        this.#timers[c] = undefined;
        this.#expire(c);
      },
      Math.max(0, head.deadline - performance.now()),
    );
    timer.unref();
    this.#timers[c] = timer;
  }

  #expire(c: number): void {
    const now = performance.now();
    let head = this.#heads[c] ?? null;
    while (head !== null && head.deadline <= now + 1) {
      this.#unlink(head);
      head.waiter.refused(QUEUE_TIMEOUT);
      head = this.#heads[c] ?? null;
    }
    this.#arm(c);
  }

  /**
   * The waiter of class `c` to admit next, or null when none may take a connection (every
   * waiter's key holds its bound). In a class that bounds its keys it is the oldest waiter
   * of the party holding the fewest of the class's connections (max-min fairness: a party
   * that holds little is served before the queue ahead of it); requests without a key
   * count as a party holding none. Otherwise the oldest. Walks the parties waiting (few:
   * one party's flood is one map entry) and, from the head, to that party's oldest entry.
   */
  #nextWaiter(c: number): QueueEntry | null {
    const head = this.#heads[c] ?? null;
    const bound = this.#keyBound[c]!;
    if (head === null || bound === 0) return head;
    const counts = this.#queuedOf[c]!;
    const held = this.#held[c]!;
    let keyed = 0;
    let party: string | undefined;
    let fewest = bound;
    for (const [key, n] of counts) {
      keyed += n;
      const h = held.get(key) ?? 0;
      if (h < fewest) {
        fewest = h;
        party = key;
      }
    }
    // Waiters without a key hold nothing: the oldest of them goes first.
    const unkeyed = keyed < this.#queued[c]!;
    if (party === undefined && !unkeyed) return null;
    let entry: QueueEntry | null = head;
    if (unkeyed) while (entry !== null && entry.key !== undefined && (entry.key !== party || fewest !== 0)) entry = entry.next;
    else while (entry !== null && entry.key !== party) entry = entry.next;
    return entry;
  }

  /** Hands free connections to waiters, the releasing class first, then the others in turn. */
  #wake(first: number): void {
    // admitted() dispatches at once, and a dispatch that fails at once releases again:
    // let the outer loop pick that up rather than recurse.
    if (this.#waking) {
      this.#wakeAgain = true;
      return;
    }
    this.#waking = true;
    try {
      do {
        this.#wakeAgain = false;
        const n = ADMISSION_CLASSES.length;
        for (let i = 0; i < n && this.#waiting !== 0; i++) {
          const c = (first + i) % n;
          while (this.#canTake(c)) {
            const entry = this.#nextWaiter(c);
            if (entry === null) break;
            this.#unlink(entry);
            if (this.#counts(c, entry.key)) increment(this.#held[c]!, entry.key);
            this.#take(c);
            entry.waiter.admitted();
          }
        }
      } while (this.#wakeAgain && this.#waiting !== 0);
    } finally {
      this.#waking = false;
    }
  }

  /**
   * Reserves room for a body Keygate reads before dispatch: `bytes` is its declared
   * length (or the most it may be). With an `upload` and its `party`, a full class makes
   * room by cutting the newest upload of a party holding more (upload-budget.ts). False
   * when the class's bodies already hold too much and none may give way.
   */
  reserveBody(c: number, bytes: number, upload?: Upload, party?: string): boolean {
    return this.#uploads[c]!.reserve(bytes, upload, party);
  }

  /** Gives back what reserveBody took: the `upload`'s room (nothing if it was cut), or `bytes` reserved without one. */
  releaseBody(c: number, bytes: number, upload?: Upload): void {
    if (upload === undefined) this.#uploads[c]!.releaseBytes(bytes);
    else this.#uploads[c]!.release(upload);
  }

  /** Uploads cut to make room for a lighter party's, over all classes (read when /metrics is scraped). */
  get uploadsCut(): number {
    let n = 0;
    for (const u of this.#uploads) n += u.cuts;
    return n;
  }

  static readonly BODIES_FULL = BODIES_FULL;
  /** The refusal of an upload cut for a lighter party's (its connection closes at once). */
  static readonly UPLOAD_CUT = UPLOAD_CUT;

  /** Keys counted against their per-key bound, over all classes (tests: the maps are freed). */
  get countedKeys(): number {
    let n = 0;
    for (let c = 0; c < ADMISSION_CLASSES.length; c++) n += this.#held[c]!.size + this.#queuedOf[c]!.size;
    return n;
  }

  /** In use and waiting, per class (read when /metrics is scraped). */
  snapshot(): Record<AdmissionClass, { active: number; queued: number; bodyBytes: number }> {
    const out = {} as Record<AdmissionClass, { active: number; queued: number; bodyBytes: number }>;
    ADMISSION_CLASSES.forEach((c, i) => {
      out[c] = { active: this.#active[i]!, queued: this.#queued[i]!, bodyBytes: this.#uploads[i]!.bytes };
    });
    return out;
  }

  /** Refuses every waiter (shutdown). */
  close(): void {
    for (let c = 0; c < ADMISSION_CLASSES.length; c++) {
      let head = this.#heads[c] ?? null;
      while (head !== null) {
        this.#unlink(head);
        head.waiter.refused(QUEUE_TIMEOUT);
        head = this.#heads[c] ?? null;
      }
    }
  }
}
