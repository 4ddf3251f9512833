import type { IncomingMessage } from 'node:http';
import { KeygateError } from '../errors/keygate-error.ts';
import type { KeyType } from '../keys/key-record.ts';
import type { Principal } from '../keys/principal.ts';
import type { TrustedHops } from '../pipeline/forwarding/trusted-hops.ts';
import type { ActionRateLimit, RateLimitRule, RateLimitSettings } from '../policy/rate-limits-section.ts';
import { clientAddress } from './client-address.ts';
import { POLICY_FIELD, policyList, retryAfterSeconds, STATE_FIELD, stateItem } from './rate-limit-headers.ts';
import type { Counters, Verdict } from './verdict.ts';

/**
 * What the check answers: the refusal (429), or the header pairs the answer carries
 * (`[name, value, …]`, lower-case names, for the forwarder to add), empty when no limit applies.
 */
export type RateLimitOutcome = KeygateError | readonly string[];

const UNLIMITED: readonly string[] = Object.freeze([]);

/** The key's own limit: `keys.<id>` over its roles' (the most generous) over its key type's. */
export function keyRule(limits: RateLimitSettings, principal: Principal): RateLimitRule | undefined {
  if (limits.keys.size > 0) {
    const own = limits.keys.get(principal.id);
    if (own !== undefined) return own;
  }
  if (limits.roles.size > 0 && principal.roles.length > 0) {
    let best: RateLimitRule | undefined;
    for (const role of principal.roles) {
      const r = limits.roles.get(role);
      if (r !== undefined && (best === undefined || r.intervalMs < best.intervalMs)) best = r;
    }
    if (best !== undefined) return best;
  }
  return limits.keyTypes.get(principal.type);
}

function actionRule(limits: RateLimitSettings, permission: string | null, type: KeyType): ActionRateLimit | undefined {
  if (permission === null || limits.actions.size === 0) return undefined;
  const r = limits.actions.get(permission);
  return r === undefined || (r.keyTypes !== null && !r.keyTypes.has(type)) ? undefined : r;
}

export interface RateLimiterOptions {
  readonly counters: Counters;
  readonly trustedHops?: TrustedHops | null;
  /** One refusal, by the key type of the key refused. */
  readonly onLimited: (keyType: KeyType) => void;
}

/**
 * The rate-limit check of a request whose key is authenticated and whose route is known
 * (so an action's limit can apply), before anything is read, served or forwarded. Under
 * its limits the request goes on with the RateLimit fields for its answer (built here,
 * written by whoever writes the head: no setHeader on the hot path); over one it is
 * refused with 429 RATE_LIMITED and the backend receives nothing.
 */
export class RateLimiter {
  readonly #counters: Counters;
  readonly #trusted: TrustedHops | null;
  readonly #onLimited: (keyType: KeyType) => void;

  constructor(options: RateLimiterOptions) {
    this.#counters = options.counters;
    this.#trusted = options.trustedHops ?? null;
    this.#onLimited = options.onLimited;
  }

  check(limits: RateLimitSettings, principal: Principal, permission: string | null, req: IncomingMessage): RateLimitOutcome | Promise<RateLimitOutcome> {
    let rule0: RateLimitRule | undefined = keyRule(limits, principal);
    let rule1: RateLimitRule | null = actionRule(limits, permission, principal.type) ?? null;
    if (rule0 === undefined) {
      if (rule1 === null) return UNLIMITED;
      rule0 = rule1;
      rule1 = null;
    }
    // A client address is read only for a rule counted per client.
    let client: string | undefined;
    const subject0 = rule0.per === 'key' ? principal.id : `${principal.id} ${(client = clientAddress(req, this.#trusted))}`;
    const subject1 = rule1 === null || rule1.per === 'key' ? principal.id : `${principal.id} ${client ?? clientAddress(req, this.#trusted)}`;
    const r0 = rule0;
    const verdict = this.#counters.take(r0, subject0, rule1, subject1);
    return verdict instanceof Promise ? verdict.then((v) => this.#answer(v, r0, rule1, principal)) : this.#answer(verdict, r0, rule1, principal);
  }

  #answer(v: Verdict, rule0: RateLimitRule, rule1: RateLimitRule | null, principal: Principal): RateLimitOutcome {
    if (!v.allowed) {
      this.#onLimited(principal.type);
      const refusing = v.refusedBy ?? rule0;
      return new KeygateError('RATE_LIMITED', {
        detail: `over ${refusing.name} (${refusing.limit} per ${refusing.windowMs / 1000} s)`,
        headers: {
          'retry-after': String(retryAfterSeconds(v.waitMs)),
          [POLICY_FIELD]: refusing.policyItem,
          [STATE_FIELD]: stateItem(refusing, 0, v.waitMs),
        },
      });
    }
    const state = rule1 === null ? stateItem(rule0, v.remaining0, v.resetMs0) : `${stateItem(rule0, v.remaining0, v.resetMs0)}, ${stateItem(rule1, v.remaining1, v.resetMs1)}`;
    return [POLICY_FIELD, policyList(rule0, rule1), STATE_FIELD, state];
  }
}
