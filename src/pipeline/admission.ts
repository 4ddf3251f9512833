import { KeygateError } from '../errors/keygate-error.ts';
import { KEY_TYPES, type KeyType } from '../keys/key-record.ts';

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
  queued = true;

  constructor(c: number, deadline: number, waiter: AdmissionWaiter) {
    this.c = c;
    this.deadline = deadline;
    this.waiter = waiter;
  }
}

function saturated(detail: string): KeygateError {
  return Object.freeze(new KeygateError('UPSTREAM_SATURATED', { detail, headers: { 'retry-after': '1' } }));
}

const QUEUE_FULL = saturated('queue full');
const QUEUE_TIMEOUT = saturated('no backend connection within the queue timeout');
const BODIES_FULL = Object.freeze(new KeygateError('UPLOADS_SATURATED', { detail: 'body memory of this key type in use', headers: { 'retry-after': '1' } }));

/**
 * Per-class admission in front of the backend pool. A request takes a connection from its
 * class's reserve first, then from the shared part (what no class reserves and no class
 * uses of its reserve), never above its class's max; otherwise it waits in its class's
 * queue (bounded in length and in time), and a full queue answers at once. So a class can
 * always get its reserve however many requests the others have in flight, and the work
 * is conserving: an idle class's shared part is used by the busy ones.
 *
 * On the warm path (a connection free) acquire and release are a few integer operations
 * on typed arrays; queues, timers and allocations exist only while a class waits.
 */
export class Admission {
  readonly #capacity: number;
  readonly #reserve: Int32Array;
  readonly #max: Int32Array;
  readonly #active: Int32Array;
  readonly #queued: Int32Array;
  readonly #bodyBytes: Float64Array;
  readonly #bodyLimit: number;
  readonly #heads: (QueueEntry | null)[];
  readonly #tails: (QueueEntry | null)[];
  readonly #timers: (NodeJS.Timeout | undefined)[];
  readonly #queueLength: number;
  readonly #queueTimeoutMs: number;
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
    this.#bodyBytes = new Float64Array(n);
    this.#bodyLimit = options.bodyBytes;
    this.#heads = new Array<QueueEntry | null>(n).fill(null);
    this.#tails = new Array<QueueEntry | null>(n).fill(null);
    this.#timers = new Array<NodeJS.Timeout | undefined>(n).fill(undefined);
    this.#queueLength = options.queueLength;
    this.#queueTimeoutMs = options.queueTimeoutMs;
    ADMISSION_CLASSES.forEach((c, i) => {
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

  /** Takes a connection for class `c` if one is free to it and nobody of its class waits. */
  tryAcquire(c: number): boolean {
    if (this.#queued[c] !== 0 || !this.#canTake(c)) return false;
    this.#take(c);
    return true;
  }

  /** Gives back a connection taken by tryAcquire or handed over by `admitted()`. */
  release(c: number): void {
    const active = this.#active[c]! - 1;
    this.#active[c] = active;
    this.#total--;
    if (active < this.#reserve[c]!) this.#unusedReserve++;
    if (this.#waiting !== 0) this.#wake(c);
  }

  /**
   * Waits for a connection of class `c`: the waiter is told `admitted()` (holding it) or
   * `refused()` once the queue timeout passes. A full queue refuses at once (returned).
   */
  enqueue(c: number, waiter: AdmissionWaiter): QueueEntry | KeygateError {
    if (this.#queued[c]! >= this.#queueLength) return QUEUE_FULL;
    const entry = new QueueEntry(c, performance.now() + this.#queueTimeoutMs, waiter);
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

  /** Leaves the queue (the client went away); nothing is called on the waiter. */
  cancel(entry: QueueEntry): void {
    if (entry.queued) this.#unlink(entry);
  }

  #unlink(entry: QueueEntry): void {
    const c = entry.c;
    entry.queued = false;
    if (entry.prev === null) this.#heads[c] = entry.next;
    else entry.prev.next = entry.next;
    if (entry.next === null) this.#tails[c] = entry.prev;
    else entry.next.prev = entry.prev;
    entry.prev = entry.next = null;
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
          let head = this.#heads[c] ?? null;
          while (head !== null && this.#canTake(c)) {
            this.#unlink(head);
            this.#take(c);
            head.waiter.admitted();
            head = this.#heads[c] ?? null;
          }
        }
      } while (this.#wakeAgain && this.#waiting !== 0);
    } finally {
      this.#waking = false;
    }
  }

  /**
   * Reserves room for a body Keygate reads before dispatch: `bytes` is its declared
   * length (or the most it may be). False when the class's bodies already hold too much.
   */
  reserveBody(c: number, bytes: number): boolean {
    const held = this.#bodyBytes[c]!;
    if (held + bytes > this.#bodyLimit) return false;
    this.#bodyBytes[c] = held + bytes;
    return true;
  }

  releaseBody(c: number, bytes: number): void {
    this.#bodyBytes[c]! -= bytes;
  }

  static readonly BODIES_FULL = BODIES_FULL;

  /** In use and waiting, per class (read when /metrics is scraped). */
  snapshot(): Record<AdmissionClass, { active: number; queued: number; bodyBytes: number }> {
    const out = {} as Record<AdmissionClass, { active: number; queued: number; bodyBytes: number }>;
    ADMISSION_CLASSES.forEach((c, i) => {
      out[c] = { active: this.#active[i]!, queued: this.#queued[i]!, bodyBytes: this.#bodyBytes[i]! };
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
