const WORDS = 4; // 128 bits of the SHA-256 hash: a false "unknown" for a real key is 2^-128 per entry
const PROBES = 8;

/** Lower-case hex digit → value (hashKey() always gives lower-case hex). */
function nibble(c: number): number {
  return c <= 57 ? c - 48 : c - 87;
}

function word(hex: string, at: number): number {
  let v = 0;
  for (let i = at; i < at + 8; i++) v = (v << 4) | nibble(hex.charCodeAt(i));
  return v >>> 0;
}

/**
 * Key hashes recently found unknown, in fixed typed arrays: open addressing, a few probes,
 * the entry closest to expiry overwritten when all are taken. A flood of distinct bad keys
 * (the bench's million-key flood) then allocates nothing per key. With an LRU of strings
 * every bad key left a hash string and map entry that lived long enough to reach V8's old
 * generation, and the old generation grew by tens of MB to hold that garbage.
 */
export class NegativeCache {
  readonly #mask: number;
  readonly #ttlMs: number;
  readonly #prints: Uint32Array;
  /** performance.now() deadline per slot; 0 = empty. */
  readonly #expires: Float64Array;
  readonly #w = new Uint32Array(WORDS);

  constructor(maxEntries: number, ttlMs: number) {
    const slots = 2 ** Math.ceil(Math.log2(Math.max(PROBES * 2, maxEntries)));
    this.#mask = slots - 1;
    this.#ttlMs = ttlMs;
    this.#prints = new Uint32Array(slots * WORDS);
    this.#expires = new Float64Array(slots);
  }

  get capacity(): number {
    return this.#mask + 1;
  }

  #load(hexHash: string): number {
    const w = this.#w;
    for (let i = 0; i < WORDS; i++) w[i] = word(hexHash, i * 8);
    return w[0]! & this.#mask;
  }

  #matches(slot: number): boolean {
    const p = this.#prints;
    const w = this.#w;
    const at = slot * WORDS;
    return p[at] === w[0] && p[at + 1] === w[1] && p[at + 2] === w[2] && p[at + 3] === w[3];
  }

  has(hexHash: string, now = performance.now()): boolean {
    const start = this.#load(hexHash);
    for (let i = 0; i < PROBES; i++) {
      const slot = (start + i) & this.#mask;
      if (this.#expires[slot]! > now && this.#matches(slot)) return true;
    }
    return false;
  }

  add(hexHash: string, now = performance.now()): void {
    const start = this.#load(hexHash);
    let target = -1;
    let soonest = Infinity;
    for (let i = 0; i < PROBES; i++) {
      const slot = (start + i) & this.#mask;
      const expires = this.#expires[slot]!;
      if (expires <= now || this.#matches(slot)) {
        target = slot;
        break;
      }
      if (expires < soonest) {
        soonest = expires;
        target = slot;
      }
    }
    this.#prints.set(this.#w, target * WORDS);
    this.#expires[target] = now + this.#ttlMs;
  }

  /** Forgets every entry (the store they were looked up in was replaced). */
  clear(): void {
    this.#expires.fill(0);
  }

  /** Live entries (a scan; for /metrics, not the request path). */
  size(now = performance.now()): number {
    let n = 0;
    for (const e of this.#expires) if (e > now) n++;
    return n;
  }
}
