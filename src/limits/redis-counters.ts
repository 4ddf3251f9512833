import { createHash } from 'node:crypto';
import { createClient, type RedisClientType } from '@redis/client';
import type { RateLimitRule } from '../policy/rate-limits-section.ts';
import { GCRA_LUA } from './gcra-script.ts';
import type { LocalCounters } from './local-counters.ts';
import { type Counters, emptyVerdict, type Verdict } from './verdict.ts';

/** How long one check may wait for Redis before this request is counted locally instead. */
const REDIS_COMMAND_TIMEOUT_MS = 250;
const CONNECT_TIMEOUT_MS = 1000;
/** After a check Redis failed, how long checks stay local before Redis is asked again: a hung Redis costs one timeout a second, not one per request. */
const RETRY_AFTER_FAILURE_MS = 1000;
const RECONNECT_MAX_MS = 2000;

export interface RedisCountersEvents {
  /** Redis became unreachable (once per outage), with why. */
  down(reason: string): void;
  /** Redis answers again. */
  up(): void;
  /** One check counted locally because Redis could not answer it. */
  fellBack(): void;
}

const SHA = createHash('sha1').update(GCRA_LUA).digest('hex');

/**
 * Counters shared by every replica through one Redis (`--rate-limit-store redis://…`),
 * with the official client (node-redis' core, `@redis/client`: maintained by Redis, typed,
 * no dependencies of its own). When Redis cannot answer (down, unreachable, slower than
 * REDIS_COMMAND_TIMEOUT_MS; then for RETRY_AFTER_FAILURE_MS) each check is counted by this process's own counters: limits
 * then hold per replica rather than across them, which keeps the limits (no fail-open) and
 * keeps traffic flowing (a Redis outage does not become a Keygate outage). The outage is
 * logged once and each fallback is counted; checks return to Redis when it answers again.
 *
 * Keys are `keygate:rl:{KEY_ID}:RULE[:CLIENT]`: the braces put one key's counters in one
 * Redis Cluster slot, as a multi-key script needs.
 */
export class RedisCounters implements Counters {
  readonly #client: RedisClientType;
  readonly #fallback: LocalCounters;
  readonly #events: RedisCountersEvents;
  #down = false;
  #closed = false;
  /** Until then (ms since the epoch), checks are local: Redis failed one recently. */
  #localUntil = 0;

  constructor(url: string, fallback: LocalCounters, events: RedisCountersEvents) {
    this.#fallback = fallback;
    this.#events = events;
    this.#client = createClient({
      url,
      // Fail fast while disconnected (to the local counters), rather than queue checks.
      disableOfflineQueue: true,
      socket: { connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy: (retries: number) => Math.min(100 * 2 ** Math.min(retries, 5), RECONNECT_MAX_MS) },
    }) as RedisClientType;
    this.#client.on('error', (err: unknown) => this.#markDown(err instanceof Error ? err.message : String(err)));
    this.#client.on('ready', () => this.#markUp());
  }

  /** Connects once; a Redis that is not there at start is an outage like any other, not a reason to refuse to start. */
  start(): void {
    this.#client.connect().catch((err: unknown) => this.#markDown(err instanceof Error ? err.message : String(err)));
  }

  #markDown(reason: string): void {
    this.#localUntil = Date.now() + RETRY_AFTER_FAILURE_MS;
    if (this.#down || this.#closed) return;
    this.#down = true;
    this.#events.down(reason);
  }

  #markUp(): void {
    this.#localUntil = 0;
    if (!this.#down) return;
    this.#down = false;
    this.#events.up();
  }

  take(rule0: RateLimitRule, subject0: string, rule1: RateLimitRule | null, subject1: string): Verdict | Promise<Verdict> {
    if (!this.#client.isReady || (this.#localUntil !== 0 && Date.now() < this.#localUntil)) return this.#local(rule0, subject0, rule1, subject1);
    const args = ['EVALSHA', SHA, rule1 === null ? '1' : '2', redisKey(rule0, subject0)];
    if (rule1 !== null) args.push(redisKey(rule1, subject1));
    args.push(String(rule0.intervalMs), String(rule0.windowMs));
    if (rule1 !== null) args.push(String(rule1.intervalMs), String(rule1.windowMs));
    return this.#send(args).then(
      (reply) => {
        if (this.#down) this.#markUp();
        return verdictOf(reply, rule0, rule1);
      },
      (err: unknown) => {
        this.#markDown(err instanceof Error ? err.message : String(err));
        return this.#local(rule0, subject0, rule1, subject1);
      },
    );
  }

  /**
   * One check, answered or failed within REDIS_COMMAND_TIMEOUT_MS. The client's own
   * `timeout` covers a command only until it is written: a Redis that stops answering on
   * an open connection would hold every check forever. A late answer is dropped.
   */
  #send(args: string[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer within ${REDIS_COMMAND_TIMEOUT_MS} ms`)), REDIS_COMMAND_TIMEOUT_MS);
      this.#evaluate(args).then(
        (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  async #evaluate(args: string[]): Promise<unknown> {
    try {
      return await this.#client.sendCommand(args);
    } catch (err) {
      // The script is not cached yet (a new or restarted Redis): send it whole once.
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return await this.#client.sendCommand(['EVAL', GCRA_LUA, ...args.slice(2)]);
    }
  }

  #local(rule0: RateLimitRule, subject0: string, rule1: RateLimitRule | null, subject1: string): Verdict {
    this.#events.fellBack();
    return this.#fallback.take(rule0, subject0, rule1, subject1);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#client.isOpen) await this.#client.close();
    else this.#client.destroy();
  }
}

function redisKey(rule: RateLimitRule, subject: string): string {
  const space = subject.indexOf(' ');
  return space === -1 ? `keygate:rl:{${subject}}:${rule.name}` : `keygate:rl:{${subject.slice(0, space)}}:${rule.name}:${subject.slice(space + 1)}`;
}

function verdictOf(reply: unknown, rule0: RateLimitRule, rule1: RateLimitRule | null): Verdict {
  if (!Array.isArray(reply) || reply.length < 3) throw new Error('unexpected answer from the rate-limit script');
  const n = reply.map(Number);
  const v = emptyVerdict();
  if (n[0] === 0) {
    v.allowed = false;
    v.refusedBy = n[1] === 2 && rule1 !== null ? rule1 : rule0;
    v.waitMs = n[2]!;
    return v;
  }
  v.remaining0 = n[1]!;
  v.resetMs0 = n[2]!;
  v.remaining1 = n[3] ?? 0;
  v.resetMs1 = n[4] ?? 0;
  return v;
}
