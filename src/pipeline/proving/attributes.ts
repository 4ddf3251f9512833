import { LRUCache } from 'lru-cache';
import type { Dispatcher } from 'undici';
import { KeygateError } from '../../errors/keygate-error.ts';
import { askerOf, type Principal } from '../../keys/principal.ts';
import type { CompiledResource } from '../../policy/model.ts';
import { fillTemplate } from '../../policy/route-template.ts';
import type { MaybePromise } from '../../util/maybe-promise.ts';
import type { Condition } from '../authorize.ts';
import { bufferedRequest } from '../forward.ts';
import { type LookupContext, NO_CONTEXT } from './lookup-context.ts';
import { AMBIGUOUS, parseUpstreamStrict } from './strict-json.ts';

/** What the answer checks read of a resource: its name and where its attributes are (a list check on a worker thread gets only these). */
export type ResourceFields = Pick<CompiledResource, 'name' | 'fields'>;

/** A resource object as the backend describes it (a device: `{id, referenceId, …}`), or null: no such resource. */
export type Attributes = Readonly<Record<string, unknown>> | null;

/** Where the attributes of one resource come from: the backend (serve) or fixtures (policy tests). */
export interface AttributeSource {
  /**
   * Synchronous on a cache hit; a promise only when the backend must be asked, in the
   * forwarded request's context (lookup-context.ts).
   */
  get(resource: CompiledResource, id: string, principal: Principal, requestId: string, context?: LookupContext): MaybePromise<Attributes>;
}

/** Told the resource's name each time a lookup is sent to the backend (a cache miss): the metrics count it. */
export type LookupObserver = (resource: string) => void;

const NO_OBSERVER: LookupObserver = () => undefined;

/** What fieldOf returns through an object whose owner keys cannot be read one way: it matches no value. */
const UNREADABLE: unknown = Object.freeze({});

/**
 * The value at `path`, undefined when absent. Through an object the answer parser marked
 * AMBIGUOUS (an owner key twice, or in a spelling other parsers fold into it) the value
 * is UNREADABLE: another parser could read another owner there.
 */
export function fieldOf(obj: unknown, path: readonly string[]): unknown {
  let v = obj;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    if ((v as { [AMBIGUOUS]?: true })[AMBIGUOUS] === true) return UNREADABLE;
    if (!Object.hasOwn(v, p)) return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

/**
 * Scalars only: a backend that answers `referenceId: ["alice", "bob"]` (or an object)
 * describes a resource whose owner is ambiguous, and ambiguity fails closed. A number
 * counts only as a safe integer, in its one canonical text (the strict parsers make
 * anything else an exact-text object, see strict-json.ts): `9007199254740993` is not
 * `9007199254740992`, whatever a float says.
 */
function valueMatches(v: unknown, allowed: readonly string[]): boolean {
  if (typeof v === 'string') return allowed.includes(v);
  if (typeof v === 'number' && Number.isSafeInteger(v)) return allowed.includes(String(v));
  return false;
}

/** All conditions hold (values of one attribute any-of, attributes all-of); a missing attribute fails. */
export function satisfies(obj: unknown, resource: ResourceFields, conditions: readonly Condition[]): boolean {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return false;
  for (const c of conditions) {
    if (!valueMatches(fieldOf(obj, resource.fields.get(c.attribute) ?? [c.attribute]), c.values)) return false;
  }
  return true;
}

/**
 * True when `obj` carries one of the checked attributes with a value the key may not see
 * (an object of another user nested inside one of the caller's). Absent attributes are
 * not a contradiction: most nested objects are not resources at all.
 */
export function contradicts(obj: object, resource: ResourceFields, conditions: readonly Condition[]): boolean {
  for (const c of conditions) {
    const v = fieldOf(obj, resource.fields.get(c.attribute) ?? [c.attribute]);
    if (v !== undefined && !valueMatches(v, c.values)) return true;
  }
  return false;
}

/**
 * Attribute lookups against the backend, cached per asker (askerOf, keys/principal.ts: no
 * user's request is answered from another's lookup, invariant 10) and resource id for
 * the resource's `ttl`, in one LRU bounded by entries. Concurrent misses of one asker
 * share one request; another user's never join it. Not-found answers are cached too, so
 * probing ids is cheap; every 3xx and 4xx lookup answer is a not-found one (a 5xx is 502). A revoked key's entries are not dropped: every request is
 * authenticated before it reaches a lookup, so they serve only the same user's other
 * keys (or nobody), and age out by `ttl` and the LRU.
 */
export class BackendAttributes implements AttributeSource {
  readonly #upstream: Dispatcher;
  readonly #cache: LRUCache<string, { value: Attributes }>;
  readonly #inflight = new Map<string, Promise<Attributes>>();
  readonly #observe: LookupObserver;

  constructor(upstream: Dispatcher, observe: LookupObserver = NO_OBSERVER, maxEntries = 50_000) {
    this.#upstream = upstream;
    this.#observe = observe;
    this.#cache = new LRUCache({ max: maxEntries, ttlAutopurge: false });
  }

  get size(): number {
    return this.#cache.size;
  }

  get(resource: CompiledResource, id: string, principal: Principal, requestId: string, context: LookupContext = NO_CONTEXT): MaybePromise<Attributes> {
    const lookup = resource.lookup;
    if (lookup === null) throw new KeygateError('RESOURCE_NOT_ALLOWED', { detail: `resource ${resource.name} has no lookup` });
    const key = askerOf(principal) + resource.name + '\u0000' + id + (context.key === '' ? '' : '\u0001' + context.key);
    const hit = this.#cache.get(key);
    if (hit !== undefined) return hit.value;
    const pending = this.#inflight.get(key);
    if (pending !== undefined) return pending;
    // Past the cache and this asker's in-flight lookup: only a lookup that is sent is counted.
    this.#observe(resource.name);
    const headers = ['x-request-id', requestId, 'x-keygate-purpose', 'attribute-lookup', 'x-keygate-key-id', principal.id, 'x-keygate-key-type', principal.type];
    if (!context.accept) headers.push('accept', 'application/json');
    if (principal.referenceId !== null) headers.push('x-keygate-reference-id', principal.referenceId);
    for (const h of context.headers) headers.push(h);
    const path = fillTemplate(lookup.template, { id }) + (context.query === '' ? '' : '?' + context.query);
    const promise = bufferedRequest(this.#upstream, { method: 'GET', path, headers, body: null })
      .then((res) => {
        // A 5xx proves nothing either way and is the backend's failure: 502, not cached.
        if (res.status >= 500) throw new KeygateError('UPSTREAM_BAD_RESPONSE', { detail: `lookup of ${resource.name} ${id}: status ${res.status}` });
        let value: Attributes = null;
        if (res.status >= 200 && res.status < 300) {
          // Strict: with two `referenceId` keys, JSON.parse would keep the last and a
          // client's parser might show the first; such an answer proves nothing.
          const parsed = parseUpstreamStrict(res.body.toString('utf8'), `lookup of ${resource.name} ${id}`);
          if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
            throw new KeygateError('UPSTREAM_BAD_RESPONSE', { detail: `lookup of ${resource.name} ${id}: not an object` });
          }
          value = parsed as Record<string, unknown>;
        }
        // Any other answer (a 404 or 410, and a 403, 401, 400 or 422 of a backend that
        // honours X-Keygate-Reference-Id and refuses another user's device, a redirect)
        // proves no ownership: it is "nobody's", the same 403 as an unknown id, and cached
        // the same way, so neither the status nor the next request's time tells a foreign
        // device from a missing one (invariant 10). 408 and 429 are about the backend's
        // load, not the resource: 403 as well, but not kept for the ttl.
        if (lookup.ttlMs > 0 && res.status !== 408 && res.status !== 429) this.#cache.set(key, { value }, { ttl: lookup.ttlMs });
        return value;
      })
      .finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, promise);
    return promise;
  }
}
