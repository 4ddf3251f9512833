import type { RateLimitRule } from '../policy/rate-limits-section.ts';

/**
 * What the counters answer for one request, checked against one or two rules at once (a
 * key's limit and its action's): let through only when every rule allows it, and then
 * counted against each; refused, it is counted against none.
 */
export interface Verdict {
  allowed: boolean;
  /** Refused: how long until the refusing rule lets a request through (ms). */
  waitMs: number;
  /** The rule that refused (allowed: unused). */
  refusedBy: RateLimitRule | null;
  /** Per rule checked (the first, then the second): requests left, and ms until the budget is whole again. */
  remaining0: number;
  resetMs0: number;
  remaining1: number;
  resetMs1: number;
}

export function emptyVerdict(): Verdict {
  return { allowed: true, waitMs: 0, refusedBy: null, remaining0: 0, resetMs0: 0, remaining1: 0, resetMs1: 0 };
}

/** Where counting happens: in this process, or in a store every replica shares. */
export interface Counters {
  /**
   * Counts one request against `rule0` for `subject0` and, when given, `rule1` for
   * `subject1`. A synchronous answer may be a reused object: read it before the next call.
   */
  take(rule0: RateLimitRule, subject0: string, rule1: RateLimitRule | null, subject1: string): Verdict | Promise<Verdict>;
  close(): Promise<void>;
}
