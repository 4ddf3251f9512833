/**
 * Metrics updated on every request. prom-client's own counters hash their label object
 * on each `inc()`/`observe()` (and a histogram allocates), which measured about 0.8 µs of
 * JavaScript per request in the proxy, plus the garbage. These keep plain numbers on the
 * hot path and hand prom-client the samples only when /metrics is scraped: they implement
 * the part of prom-client's metric interface its Registry reads (`name`, `help`, `type`,
 * `get()`, `reset()`), so the exposition format stays prom-client's.
 */

export interface Sample {
  readonly metricName?: string;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
}

interface Snapshot {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly values: Sample[];
  readonly aggregator: 'sum';
}

abstract class ScrapedMetric {
  readonly name: string;
  readonly help: string;
  abstract readonly type: 'counter' | 'histogram';
  readonly aggregator = 'sum' as const;

  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }

  protected abstract samples(): Sample[];
  abstract reset(): void;

  get(): Promise<Snapshot> {
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values: this.samples(), aggregator: this.aggregator });
  }
}

/** A counter with one label whose values are known up front: `counts[i]++` on the hot path. */
export class FixedCounter extends ScrapedMetric {
  readonly type = 'counter';
  readonly counts: Float64Array;
  readonly #label: string;
  readonly #values: readonly string[];

  constructor(name: string, help: string, label: string, values: readonly string[]) {
    super(name, help);
    this.#label = label;
    this.#values = values;
    this.counts = new Float64Array(values.length);
  }

  protected samples(): Sample[] {
    return this.#values.map((v, i) => ({ labels: { [this.#label]: v }, value: this.counts[i]! }));
  }

  reset(): void {
    this.counts.fill(0);
  }
}

/**
 * A histogram with one label whose values are known up front. Counts are kept per bucket
 * (not cumulative) so an observation touches one cell; the scrape accumulates them.
 */
export class FixedHistogram extends ScrapedMetric {
  readonly type = 'histogram';
  readonly #label: string;
  readonly #values: readonly string[];
  readonly #bounds: Float64Array;
  /** values.length rows of bounds.length + 1 cells (the last one: above every bound, +Inf). */
  readonly #cells: Float64Array;
  readonly #sums: Float64Array;

  constructor(name: string, help: string, label: string, values: readonly string[], bounds: readonly number[]) {
    super(name, help);
    this.#label = label;
    this.#values = values;
    this.#bounds = Float64Array.from([...bounds].sort((a, b) => a - b));
    this.#cells = new Float64Array(values.length * (bounds.length + 1));
    this.#sums = new Float64Array(values.length);
  }

  observe(index: number, value: number): void {
    const bounds = this.#bounds;
    let b = 0;
    while (b < bounds.length && value > bounds[b]!) b++;
    this.#cells[index * (bounds.length + 1) + b]!++;
    this.#sums[index]! += value;
  }

  protected samples(): Sample[] {
    const out: Sample[] = [];
    const width = this.#bounds.length + 1;
    for (let i = 0; i < this.#values.length; i++) {
      const label = this.#values[i]!;
      let total = 0;
      for (let b = 0; b < width; b++) total += this.#cells[i * width + b]!;
      // As prom-client: a label set appears once it has been observed.
      if (total === 0) continue;
      let cumulative = 0;
      for (let b = 0; b < width; b++) {
        cumulative += this.#cells[i * width + b]!;
        out.push({ metricName: `${this.name}_bucket`, labels: { le: b < width - 1 ? this.#bounds[b]! : '+Inf', [this.#label]: label }, value: cumulative });
      }
      out.push({ metricName: `${this.name}_sum`, labels: { [this.#label]: label }, value: this.#sums[i]! });
      out.push({ metricName: `${this.name}_count`, labels: { [this.#label]: label }, value: cumulative });
    }
    return out;
  }

  reset(): void {
    this.#cells.fill(0);
    this.#sums.fill(0);
  }
}

/**
 * `keygate_requests_total`: one cell per (route, status, decision, key type). The route
 * template strings come from the compiled policy, so the outer probe hashes nothing new;
 * the rest packs into one number, the inner map's key.
 */
export class RequestCounter extends ScrapedMetric {
  readonly type = 'counter';
  readonly #routes = new Map<string, Map<number, number>>();
  readonly #decisions: readonly string[];
  readonly #keyTypes: string[];

  constructor(name: string, help: string, decisions: readonly string[], keyTypes: readonly string[]) {
    super(name, help);
    this.#decisions = decisions;
    this.#keyTypes = [...keyTypes];
  }

  inc(decision: number, keyType: string, route: string, status: number): void {
    let k = this.#keyTypes.indexOf(keyType);
    if (k === -1) k = this.#keyTypes.push(keyType) - 1;
    let cells = this.#routes.get(route);
    if (cells === undefined) {
      cells = new Map();
      this.#routes.set(route, cells);
    }
    const code = (status * 16 + decision) * 64 + k;
    cells.set(code, (cells.get(code) ?? 0) + 1);
  }

  protected samples(): Sample[] {
    const out: Sample[] = [];
    for (const [route, cells] of this.#routes) {
      for (const [code, value] of cells) {
        const k = code % 64;
        const rest = (code - k) / 64;
        const decision = rest % 16;
        const status = (rest - decision) / 16;
        out.push({ labels: { decision: this.#decisions[decision]!, key_type: this.#keyTypes[k]!, route, status: String(status) }, value });
      }
    }
    return out;
  }

  reset(): void {
    this.#routes.clear();
  }
}
