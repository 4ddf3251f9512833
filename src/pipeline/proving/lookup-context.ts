/**
 * What of the forwarded request an attribute lookup carries. A lookup proves that the
 * resource the backend will act on is the caller's; it proves that only if the backend
 * resolves the resource the same way for both. A multi-tenant backend that picks the
 * tenant from a query parameter, a header or a cookie (`__tenant`, `X-Tenant-Id`,
 * `baggage: tenant=…`, an `Accept` media type, `X-Forwarded-Host` of a subdomain) would
 * otherwise be asked about device 1 of the default tenant while the request acts on
 * device 1 of another (invariant 9). So the lookup is sent with the forwarded request's
 * query and every forwarded header but those that describe this request's body or ask
 * for a partial or conditional answer (a lookup needs the whole, fresh object), and it is
 * cached under them — all but the tracing headers whose values are new on every request
 * (`traceparent`, `b3`, …), which travel with the lookup but do not split the cache.
 * Override headers (`X-HTTP-Method-Override`, `X-Verb`, …) are never forwarded at all
 * (header-classes.ts), so a lookup cannot be turned into another method either.
 */
export interface LookupContext {
  /** The forwarded query, without `?`; '' when there is none. */
  readonly query: string;
  /** Header pairs (lower-case names) added to the lookup. */
  readonly headers: readonly string[];
  /** Whether `headers` holds the request's own `Accept` (the lookup then sends it instead of `application/json`). */
  readonly accept: boolean;
  /** Part of the cache key: '' for a request with nothing beyond what every lookup has. */
  readonly key: string;
}

export const NO_CONTEXT: LookupContext = Object.freeze({ query: '', headers: Object.freeze([]), accept: false, key: '' });

/** Not carried: the lookup sets its own (encoding, identity), or they describe this request's body or ask for part of an answer. */
const NOT_CARRIED = new Set([
  'accept-encoding',
  'content-length',
  'content-type',
  'content-encoding',
  'transfer-encoding',
  'expect',
  'x-request-id',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'if-range',
  'range',
  'x-keygate-key-id',
  'x-keygate-key-type',
  'x-keygate-reference-id',
]);

/** Carried, but not in the cache key: their values are new on every request, and no backend picks a resource by them. */
const PER_REQUEST = new Set(['traceparent', 'b3', 'sentry-trace', 'x-amzn-trace-id', 'x-cloud-trace-context', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-b3-flags']);

/** The context of a forwarded request (`path` with its query, its upstream header pairs). */
export function lookupContext(path: string, headers: readonly string[]): LookupContext {
  const q = path.indexOf('?');
  const query = q === -1 ? '' : path.slice(q + 1);
  let kept: string[] | null = null;
  let accept = false;
  let key = query;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (NOT_CARRIED.has(name)) continue;
    (kept ??= []).push(name, headers[i + 1]!);
    if (name === 'accept') accept = true;
    if (!PER_REQUEST.has(name)) key += `\u0000${name}\u0000${headers[i + 1]!}`;
  }
  return kept === null && query === '' ? NO_CONTEXT : { query, headers: kept ?? [], accept, key };
}
