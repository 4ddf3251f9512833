/** What a PairMemo keeps per first key: a Map, or a WeakMap when the second keys are objects that come and go. */
interface Table<B, V> {
  get(key: B): V | undefined;
  set(key: B, value: V): unknown;
}

/**
 * `make(a, b)` computed once per pair and kept while `a` lives: for values derived from
 * immutable inputs (a compiled resource or role, a cached principal) that a warm request
 * would otherwise rebuild. `make` takes the pair as arguments so callers pass a module-level
 * function, not a closure allocated per call. `make` must not return undefined.
 */
export class PairMemo<A extends object, B, V> {
  readonly #byFirst = new WeakMap<A, Table<B, V>>();
  readonly #table: () => Table<B, V>;

  /** `table` makes the per-`a` table: `() => new WeakMap()` when `b` must not be kept alive. */
  constructor(table: () => Table<B, V>) {
    this.#table = table;
  }

  get(a: A, b: B, make: (a: A, b: B) => V): V {
    let table = this.#byFirst.get(a);
    if (table === undefined) this.#byFirst.set(a, (table = this.#table()));
    let value = table.get(b);
    if (value === undefined) table.set(b, (value = make(a, b)));
    return value;
  }
}
