import { LRUCache } from 'lru-cache';
import type { RateLimitRule } from '../policy/rate-limits-section.ts';
import { type Cell, nextTat, remainingAt, waitFor } from './gcra.ts';
import { type Counters, emptyVerdict, type Verdict } from './verdict.ts';

/**
 * Counters per rule and subject beyond which the least recently seen are forgotten.
 * Subjects are valid keys (counting starts after authentication), or a valid public
 * key with client addresses: evicting one only gives that subject a fresh budget, which
 * a client with that many addresses has anyway.
 */
export const COUNTERS_PER_RULE = 50_000;

/**
 * Counters in this process's memory (the default; one budget per process: with
 * `--workers` or several replicas, use the shared store). Counted by rule name, so a
 * policy reload that keeps a rule keeps its counters. A request under its limit allocates
 * nothing once its counter exists: the verdict object is reused.
 */
export class LocalCounters implements Counters {
  readonly #rules = new Map<string, LRUCache<string, Cell>>();
  readonly #verdict = emptyVerdict();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  #cells(rule: RateLimitRule): LRUCache<string, Cell> {
    let cells = this.#rules.get(rule.name);
    if (cells === undefined) {
      cells = new LRUCache<string, Cell>({ max: COUNTERS_PER_RULE });
      this.#rules.set(rule.name, cells);
    }
    return cells;
  }

  take(rule0: RateLimitRule, subject0: string, rule1: RateLimitRule | null, subject1: string): Verdict {
    const now = this.#now();
    const v = this.#verdict;
    const cells0 = this.#cells(rule0);
    const cell0 = cells0.get(subject0);
    const next0 = nextTat(cell0, now, rule0);
    const wait0 = waitFor(next0, now, rule0);
    if (wait0 > 0) return refuse(v, rule0, wait0);
    let next1 = 0;
    let cell1: Cell | undefined;
    let cells1: LRUCache<string, Cell> | undefined;
    if (rule1 !== null) {
      cells1 = this.#cells(rule1);
      cell1 = cells1.get(subject1);
      next1 = nextTat(cell1, now, rule1);
      const wait1 = waitFor(next1, now, rule1);
      if (wait1 > 0) return refuse(v, rule1, wait1);
      if (cell1 === undefined) cells1.set(subject1, { tat: next1 });
      else cell1.tat = next1;
      v.remaining1 = remainingAt(next1, now, rule1);
      v.resetMs1 = next1 - now;
    }
    if (cell0 === undefined) cells0.set(subject0, { tat: next0 });
    else cell0.tat = next0;
    v.allowed = true;
    v.refusedBy = null;
    v.waitMs = 0;
    v.remaining0 = remainingAt(next0, now, rule0);
    v.resetMs0 = next0 - now;
    return v;
  }

  /** Counters held, across rules (the cache-entries gauge). */
  get size(): number {
    let n = 0;
    for (const cells of this.#rules.values()) n += cells.size;
    return n;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function refuse(v: Verdict, rule: RateLimitRule, waitMs: number): Verdict {
  v.allowed = false;
  v.refusedBy = rule;
  v.waitMs = waitMs;
  return v;
}
