import type { KeyEvent } from './key-event.ts';
import type { KeyStore } from './store.ts';

/** How often a sidecar looks for keys that reached their expiry (the audit trail's `expired` events). */
const EXPIRY_CHECK_MS = 60_000;

/**
 * An expiry is nobody's act, so nothing would record it: every sidecar asks the store once
 * a minute (and once at start) to record `expired` for the keys whose time has passed,
 * exactly once per key whichever process gets there first, and to forget previous secrets
 * whose grace has ended. A key stops working at its expiry regardless (the principal
 * carries it); the event follows within a minute. Off the request path.
 */
export class ExpiryWatch {
  readonly #store: KeyStore;
  readonly #onEvents: (events: readonly KeyEvent[]) => void;
  readonly #onError: (err: unknown) => void;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> = Promise.resolve();

  constructor(store: KeyStore, onEvents: (events: readonly KeyEvent[]) => void, onError: (err: unknown) => void = () => undefined) {
    this.#store = store;
    this.#onEvents = onEvents;
    this.#onError = onError;
  }

  start(intervalMs = EXPIRY_CHECK_MS): void {
    void this.check();
    this.#timer = setInterval(() => void this.check(), intervalMs);
    this.#timer.unref();
  }

  check(now = new Date()): Promise<void> {
    this.#running = this.#running
      .then(() => this.#store.recordExpiries(now))
      .then((events) => {
        if (events.length > 0) this.#onEvents(events);
      })
      .catch((err: unknown) => this.#onError(err));
    return this.#running;
  }

  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running;
  }
}
