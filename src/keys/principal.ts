import type { FoundKey, KeyConditions, KeyRecord, KeyType } from './key-record.ts';

/**
 * When a key was last used, in epoch ms read from a coarse clock (last-used.ts). The one
 * mutable thing a principal holds: a cache hit writes this field and nothing else, and
 * successive principals of one key (the cache replaces them every TTL) share one object.
 */
export interface KeyUsage {
  atMs: number;
  /** The use last handed to the store (the recorder writes only what moved on). */
  writtenMs: number;
}

/** The authenticated caller as the pipeline sees it: what the key may be, never the secret. */
export interface Principal {
  readonly id: string;
  readonly type: KeyType;
  readonly referenceId: string | null;
  readonly name: string | null;
  readonly roles: readonly string[];
  readonly conditions: KeyConditions;
  readonly allowedOrigins: readonly string[];
  readonly allowedRedirects: readonly string[];
  readonly allowReferenceId: boolean;
  /**
   * Epoch ms, or Infinity: checked on every cache hit so an expiry needs no store query.
   * For a previous secret in a rotation's grace period, the earlier of the key's expiry
   * and the end of the grace.
   */
  readonly expiresAtMs: number;
  readonly usage: KeyUsage;
}

function ms(iso: string | null | undefined): number {
  return iso === null || iso === undefined ? Infinity : Date.parse(iso);
}

export function toPrincipal(record: KeyRecord | FoundKey, usage: KeyUsage = { atMs: 0, writtenMs: 0 }): Principal {
  const secretExpiresAt = 'secretExpiresAt' in record ? record.secretExpiresAt : null;
  return {
    id: record.id,
    type: record.type,
    referenceId: record.referenceId,
    name: record.name,
    roles: record.roles,
    conditions: record.conditions,
    allowedOrigins: record.allowedOrigins,
    allowedRedirects: record.allowedRedirects,
    allowReferenceId: record.allowReferenceId,
    expiresAtMs: Math.min(ms(record.expiresAt), ms(secretExpiresAt)),
    usage,
  };
}

/** A principal for a key that exists only in a policy test or an explanation (no store, no usage). */
export function testPrincipal(fields: Pick<Principal, 'type'> & Partial<Omit<Principal, 'type'>>): Principal {
  return {
    id: 'key_test',
    referenceId: null,
    name: null,
    roles: [],
    conditions: {},
    allowedOrigins: [],
    allowedRedirects: [],
    allowReferenceId: false,
    expiresAtMs: Infinity,
    usage: { atMs: 0, writtenMs: 0 },
    ...fields,
  };
}

/**
 * Who a request is made for, as the caches and bounds that must not let one party affect
 * another count it: a scoped key's end user (its referenceId: one user's keys, one per
 * finished Connect link, are one party), any other key by its id. The owner-lookup cache
 * (invariant 10) and the per-key share of the backend pool (invariant 11) use it. The
 * separator (NUL or SOH) tells the two kinds apart, and cannot occur inside either: a
 * referenceId is visible ASCII (key-record.ts), a key id is generated.
 */
export function askerOf(principal: Pick<Principal, 'type' | 'id' | 'referenceId'>): string {
  let asker = ASKERS.get(principal);
  if (asker === undefined) {
    const ref = principal.referenceId;
    asker = principal.type === 'scoped' && ref !== null ? ref + '\u0000' : principal.id + '\u0001';
    ASKERS.set(principal, asker);
  }
  return asker;
}

/** A principal is cached with its key (key-cache.ts) and read on every request: its asker is built once, flat, not a new string per request. */
const ASKERS = new WeakMap<object, string>();
