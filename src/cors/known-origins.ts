/**
 * The origins a preflight is answered for. A preflight carries no key (browsers never send
 * custom headers on one), so it cannot be judged against the key that will follow; it is
 * judged against every origin some active connect key allows (a scoped key's origins are
 * those of the connect key whose link minted it). The set is read from the store on an
 * interval, off the request path, and an origin a keyed request proves allowed is added at
 * once. The preflight is not the security boundary: the request that follows is judged
 * against its own key's origins (ORIGIN_NOT_ALLOWED), so a set that is a little stale or a
 * little wide lets nothing through that its key does not allow.
 */
export class KnownOrigins {
  #origins: ReadonlySet<string>;
  /** Origins keyed requests proved allowed since the last read of the store. */
  #learned = new Set<string>();
  readonly #load: () => Promise<Iterable<string>>;
  readonly #onError: (err: unknown) => void;
  #timer: NodeJS.Timeout | null = null;
  #loading: Promise<void> | null = null;

  constructor(load: () => Promise<Iterable<string>>, onError: (err: unknown) => void = () => {}) {
    this.#load = load;
    this.#onError = onError;
    this.#origins = new Set();
  }

  has(origin: string): boolean {
    return this.#origins.has(origin) || this.#learned.has(origin);
  }

  /** A keyed request from this origin was allowed by its key. */
  learn(origin: string): void {
    if (!this.#origins.has(origin)) this.#learned.add(origin);
  }

  get size(): number {
    return this.#origins.size + this.#learned.size;
  }

  /** Reads the store once; a failed read keeps the set it had (logged by the caller's onError). */
  refresh(): Promise<void> {
    this.#loading ??= this.#load()
      .then(
        (origins) => {
          this.#origins = new Set(origins);
          this.#learned = new Set();
        },
        (err: unknown) => this.#onError(err),
      )
      .finally(() => {
        this.#loading = null;
      });
    return this.#loading;
  }

  /** Reads now, then every `intervalMs` (the timer does not keep the process alive). */
  async start(intervalMs: number): Promise<void> {
    await this.refresh();
    this.#timer = setInterval(() => void this.refresh(), intervalMs);
    this.#timer.unref();
  }

  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}
