import type { KeyCache } from './key-cache.ts';
import type { KeyStore, KeyUse } from './store.ts';

/** How often the coarse clock advances: the accuracy of lastUsedAt. */
const CLOCK_TICK_MS = 1_000;
/** How often uses are written: each key at most once per interval, in one batch. */
const FLUSH_INTERVAL_MS = 60_000;

/**
 * lastUsedAt without a write per request. A cache hit stamps the key's usage object with
 * the coarse clock (one field write: no allocation, no clock read, no map operation on the
 * request path); this recorder advances the clock every second and, once a minute, writes
 * the keys whose stamp moved on, in one batch, then forgets keys unused since the batch
 * before. On shutdown, `stop()` writes what is left. So a key's lastUsedAt is its last
 * use to within a second, as of the last write: up to a minute behind, or lost with the
 * process if it dies without a shutdown.
 */
export class UsageRecorder {
  readonly #cache: KeyCache;
  readonly #store: KeyStore;
  readonly #onError: (err: unknown) => void;
  #tick: NodeJS.Timeout | null = null;
  #flush: NodeJS.Timeout | null = null;
  #writing: Promise<void> = Promise.resolve();

  constructor(cache: KeyCache, store: KeyStore, onError: (err: unknown) => void = () => undefined) {
    this.#cache = cache;
    this.#store = store;
    this.#onError = onError;
  }

  start(flushMs = FLUSH_INTERVAL_MS): void {
    this.#cache.clock.ms = Date.now();
    this.#tick = setInterval(() => {
      this.#cache.clock.ms = Date.now();
    }, CLOCK_TICK_MS);
    this.#tick.unref();
    this.#flush = setInterval(() => void this.flush(), flushMs);
    this.#flush.unref();
  }

  /** The uses not yet written; keys unused since the last batch leave the map (it holds only keys in use). */
  #take(): KeyUse[] {
    const batch: KeyUse[] = [];
    for (const [id, usage] of this.#cache.usage) {
      if (usage.atMs > usage.writtenMs) {
        batch.push({ id, at: new Date(usage.atMs).toISOString() });
        usage.writtenMs = usage.atMs;
      } else {
        this.#cache.usage.delete(id);
      }
    }
    return batch;
  }

  /** Writes the uses since the last batch (one store call); a failure is reported, and those uses are lost. */
  flush(): Promise<void> {
    const batch = this.#take();
    if (batch.length === 0) return this.#writing;
    this.#writing = this.#writing.then(() => this.#store.touch(batch)).catch((err: unknown) => this.#onError(err));
    return this.#writing;
  }

  /** Stops the timers and writes what is left (shutdown, before the store closes). */
  async stop(): Promise<void> {
    if (this.#tick !== null) clearInterval(this.#tick);
    if (this.#flush !== null) clearInterval(this.#flush);
    this.#tick = this.#flush = null;
    this.#cache.clock.ms = Date.now();
    await this.flush();
  }
}
