import type { RateLimitRule } from '../policy/rate-limits-section.ts';

/**
 * The fields of draft-ietf-httpapi-ratelimit-headers-12: `RateLimit-Policy` names each
 * quota policy (`"name";q=LIMIT;w=WINDOW_S`, §3), `RateLimit` its state for this request
 * (`"name";r=REMAINING;t=SECONDS`, §4, t: until the budget is whole again). Both are
 * structured-field lists (RFC 9651), one item per rule the request was counted against.
 */
export const POLICY_FIELD = 'ratelimit-policy';
export const STATE_FIELD = 'ratelimit';

export function stateItem(rule: RateLimitRule, remaining: number, resetMs: number): string {
  return `"${rule.name}";r=${remaining};t=${Math.ceil(resetMs / 1000)}`;
}

export function policyList(rule0: RateLimitRule, rule1: RateLimitRule | null): string {
  return rule1 === null ? rule0.policyItem : `${rule0.policyItem}, ${rule1.policyItem}`;
}

/** Retry-After (RFC 9110 §10.2.3) in whole seconds, never 0: a client told 0 retries at once. */
export function retryAfterSeconds(waitMs: number): number {
  return Math.max(1, Math.ceil(waitMs / 1000));
}
