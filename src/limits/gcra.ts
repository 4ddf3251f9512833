import type { RateLimitRule } from '../policy/rate-limits-section.ts';

/**
 * GCRA, the generic cell rate algorithm (ITU-T I.371; what Redis-Cell and Stripe-style
 * limiters use): one number per counter, the theoretical arrival time (TAT) of the next
 * request. Chosen over a sliding window because it keeps one float per counter (a sliding
 * log keeps one per request, a sliding-window estimate two counters and a boundary), has
 * no edge where two windows' budgets can be spent back to back, and is a few lines of Lua
 * for the shared store. A rule of `limit` per `window` lets `limit` requests through at
 * once and then one per `window / limit`.
 */
export interface Cell {
  tat: number;
}

/** Below this a float's rounding (1000 / 3 * 3) is not a wait. */
const EPSILON_MS = 1e-6;

/** The TAT this request would leave, were it let through. */
export function nextTat(cell: Cell | undefined, now: number, rule: RateLimitRule): number {
  const tat = cell === undefined || cell.tat < now ? now : cell.tat;
  return tat + rule.intervalMs;
}

/** How long (ms) the request leaving `next` must wait to conform; 0 when it conforms now. */
export function waitFor(next: number, now: number, rule: RateLimitRule): number {
  const wait = next - rule.windowMs - now;
  return wait > EPSILON_MS ? wait : 0;
}

/** Requests still allowed at once after the TAT reached `tat`. */
export function remainingAt(tat: number, now: number, rule: RateLimitRule): number {
  const r = Math.floor((now + rule.windowMs - tat) / rule.intervalMs + EPSILON_MS);
  return Math.max(r, 0);
}
