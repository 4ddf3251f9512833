import { getHeapStatistics } from 'node:v8';

/**
 * V8's `gc` as `--expose-gc` defines it. The `last-resort` flavour is the collection V8
 * runs under memory pressure: several full collections that also compact and give the
 * emptied pages back to the system; an ordinary major collection keeps them.
 */
export type ExposedGc = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/** `gc` when Node runs with `--expose-gc` (bin/keygate.js's shebang), else undefined. */
export function exposedGc(): ExposedGc | undefined {
  const gc = (globalThis as { gc?: unknown }).gc;
  return typeof gc === 'function' ? (gc as ExposedGc) : undefined;
}

interface SettleFigures {
  readonly heapBeforeBytes: number;
  readonly heapAfterBytes: number;
  readonly ms: number;
}

export interface MemorySettleOptions {
  readonly checkMs: number;
  /** Checks in a row with at most `quietRequests` finished and none in flight. */
  readonly quietChecks: number;
  readonly quietRequests: number;
  /**
   * V8 heap committed above its smallest since the last settle (or start). A burst of
   * thousands of connections leaves 60-240 MB above a settled heap, so at 64 MB one that
   * had grown it by 63 MB kept 74 MB of RSS (the bound is 50 MB). Ordinary load on a warm
   * process leaves 20-40 MB, so a pause after it may settle too: once per `minIntervalMs`.
   */
  readonly excessBytes: number;
  /**
   * At most one settle per this long: the collection stops the event loop (100-260 ms, on
   * an idle process). At 30 s (and still at 5 s) a burst that came soon after the last
   * settle (bursts with pauses between them, as in the bench's interleaved rounds) kept its
   * memory for that long again. Each settle needs `excessBytes` of new growth and
   * `quietChecks` quiet checks, so this is only a ceiling: one pause per 2 s, on an idle process.
   */
  readonly minIntervalMs: number;
  /**
   * A settle follows a burst: at least this many client connections open at once since
   * the last settle. Ordinary load grows the heap by 20-40 MB too (its young generation
   * and working set), and a settle after each pause in it threw that back: every full
   * collection on an idle process discards the optimised code that embedded the objects
   * of connections now closed (V8: "embedded weak objects cleared", 140-280 functions a
   * time), and the next seconds of traffic compile them again (docs/performance.md).
   */
  readonly burstConnections: number;
  /** Growth that is settled even without a burst of connections (large answers, say). */
  readonly largeExcessBytes: number;
}

export const DEFAULT_SETTLE: Readonly<MemorySettleOptions> = Object.freeze({
  // Quiet for 1.5 s (three checks with at most 5 requests finished in each, none in
  // flight). With 1 s checks the settle came 3-4 s after a burst's last request, by the
  // phase of the timer sometimes after the bench's 5 s window.
  checkMs: 500,
  quietChecks: 3,
  quietRequests: 5,
  excessBytes: 32 * 2 ** 20,
  minIntervalMs: 2_000,
  burstConnections: 256,
  largeExcessBytes: 256 * 2 ** 20,
});

export interface SettleSources {
  /** Requests finished so far (a counter). */
  readonly finished: () => number;
  readonly inFlight: () => number;
  /** The most client connections open at once since the last call (ListenerConnections.takePeak). */
  readonly peakConnections: () => number;
  readonly gc: ExposedGc;
  readonly onSettle: (figures: SettleFigures) => void;
}

const committed = (): number => getHeapStatistics().total_heap_size;

/**
 * Gives the memory of a burst back once traffic has stopped. Under a burst of thousands
 * of connections V8's heap grows by the requests held at once (hundreds of MB at 5,000
 * queued), and after it V8 keeps those pages: its memory reducer, which would compact an
 * idle heap, judges the allocation rate by what was allocated between collections, and an
 * idle process allocates too little to cause one, so the reducer goes on seeing the
 * burst's rate and never starts. Here, once the proxy has been quiet for `quietChecks`
 * checks after a burst (`burstConnections` open at once) and the heap holds more than
 * `excessBytes` beyond its smallest since the last settle (or, burst or not, more than
 * `largeExcessBytes`), one last-resort collection runs (a few hundred ms at most, on an
 * idle process).
 */
export class MemorySettle {
  readonly #sources: SettleSources;
  readonly #options: MemorySettleOptions;
  #timer: NodeJS.Timeout | undefined;
  #baseline = committed();
  #lastFinished = 0;
  #quiet = 0;
  #lastSettleAt = -Infinity;
  /** The most connections open at once since the last settle. */
  #burst = 0;

  constructor(sources: SettleSources, options: MemorySettleOptions = DEFAULT_SETTLE) {
    this.#sources = sources;
    this.#options = options;
  }

  start(): void {
    this.#lastFinished = this.#sources.finished();
    this.#timer = setInterval(() => this.#check(), this.#options.checkMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #check(): void {
    const finished = this.#sources.finished();
    const quiet = finished - this.#lastFinished <= this.#options.quietRequests && this.#sources.inFlight() === 0;
    this.#lastFinished = finished;
    this.#quiet = quiet ? this.#quiet + 1 : 0;
    const peak = this.#sources.peakConnections();
    if (peak > this.#burst) this.#burst = peak;
    const heap = committed();
    // V8 shrinking by itself lowers the mark too.
    if (heap < this.#baseline) this.#baseline = heap;
    const now = performance.now();
    if (this.#quiet < this.#options.quietChecks || now - this.#lastSettleAt < this.#options.minIntervalMs) return;
    const excess = heap - this.#baseline;
    if (excess <= this.#options.excessBytes) return;
    if (this.#burst < this.#options.burstConnections && excess <= this.#options.largeExcessBytes) return;
    this.#sources.gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    const after = committed();
    this.#lastSettleAt = performance.now();
    this.#baseline = after;
    this.#burst = 0;
    this.#sources.onSettle({ heapBeforeBytes: heap, heapAfterBytes: after, ms: this.#lastSettleAt - now });
  }
}
