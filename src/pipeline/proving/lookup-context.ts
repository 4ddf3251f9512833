/**
 * What of the forwarded request an attribute lookup carries. A lookup proves that the
 * resource the backend will act on is the caller's; it proves that only if the backend
 * resolves the resource the same way for both. A multi-tenant backend that picks the
 * tenant from a query parameter, a header or a cookie (`__tenant`, `X-Tenant-Id`,
 * `X-Forwarded-Host` of a subdomain) would otherwise be asked about device 1 of the
 * default tenant while the request acts on device 1 of another (invariant 9). So the
 * lookup is sent with the forwarded request's query and every forwarded header but those
 * that describe this request's body, ask for another representation or another freshness,
 * trace it, or override its method; and it is cached under them.
 */
export interface LookupContext {
  /** The forwarded query, without `?`; '' when there is none. */
  readonly query: string;
  /** Header pairs (lower-case names) added to the lookup. */
  readonly headers: readonly string[];
  /** Part of the cache key: '' for a request with nothing beyond what every lookup has. */
  readonly key: string;
}

export const NO_CONTEXT: LookupContext = Object.freeze({ query: '', headers: Object.freeze([]), key: '' });

/** Not context: the lookup sets its own (accept, identity), or the value belongs to this one request. */
const NOT_CONTEXT = new Set([
  'accept',
  'accept-encoding',
  'content-length',
  'content-type',
  'content-encoding',
  'transfer-encoding',
  'expect',
  'x-request-id',
  'traceparent',
  'tracestate',
  'baggage',
  'b3',
  'sentry-trace',
  'x-amzn-trace-id',
  'x-cloud-trace-context',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'if-range',
  'range',
  'cache-control',
  'pragma',
  'x-keygate-key-id',
  'x-keygate-key-type',
  'x-keygate-reference-id',
]);

function isContext(name: string): boolean {
  if (NOT_CONTEXT.has(name) || name.startsWith('x-b3-')) return false;
  // A lookup is a read: nothing that could make a backend take it for another method.
  return !(name.includes('method') || name.includes('verb') || name.includes('override'));
}

/** The context of a forwarded request (`path` with its query, its upstream header pairs). */
export function lookupContext(path: string, headers: readonly string[]): LookupContext {
  const q = path.indexOf('?');
  const query = q === -1 ? '' : path.slice(q + 1);
  let kept: string[] | null = null;
  let key = query;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (!isContext(name)) continue;
    (kept ??= []).push(name, headers[i + 1]!);
    key += `\u0000${name}\u0000${headers[i + 1]!}`;
  }
  return kept === null && query === '' ? NO_CONTEXT : { query, headers: kept ?? [], key };
}
