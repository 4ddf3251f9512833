import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

/** What a browser app may send: the key and a JSON body (RFC 6454 origins, Fetch standard §3.2). */
export const ALLOW_HEADERS = 'Texture-Api-Key, Content-Type';
export const ALLOW_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE';
/** What a browser app may read besides the CORS-safelisted headers. */
const EXPOSE_HEADERS = 'X-Request-Id, Retry-After, RateLimit, RateLimit-Policy';
/** How long a browser may reuse a preflight answer (Chromium caps it at 2 h). */
export const PREFLIGHT_MAX_AGE = '600';

const CORS_PREFIX = 'access-control-';

function isCorsName(name: string): boolean {
  return name.length > CORS_PREFIX.length && name.slice(0, CORS_PREFIX.length).toLowerCase() === CORS_PREFIX;
}

function withOrigin(vary: string | undefined): string {
  if (vary === undefined || vary === '') return 'Origin';
  return /(^|,)\s*(origin|\*)\s*(,|$)/i.test(vary) ? vary : vary + ', Origin';
}

type HeadArgs = [statusMessage?: string | OutgoingHttpHeaders | string[], headers?: OutgoingHttpHeaders | string[]];

/** The headers of one answer as writeHead got them, without any `Access-Control-*` of the backend's, with Keygate's. */
function decorate(headers: OutgoingHttpHeaders | string[] | undefined, origin: string): string[] {
  const out: string[] = [];
  let vary: string | undefined;
  const add = (name: string, value: unknown): void => {
    if (isCorsName(name)) return;
    if (name.toLowerCase() === 'vary') {
      vary = vary === undefined ? String(value) : `${vary}, ${String(value)}`;
      return;
    }
    out.push(name, String(value));
  };
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) add(headers[i]!, headers[i + 1]);
  } else if (headers !== undefined) {
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const v of value) add(name, v);
      else add(name, value);
    }
  }
  out.push('vary', withOrigin(vary), 'access-control-allow-origin', origin, 'access-control-expose-headers', EXPOSE_HEADERS);
  return out;
}

/**
 * Makes this one answer carry CORS headers for `origin`, whoever writes its head (the
 * forwarder with the backend's headers, the error renderer, a served route). The
 * backend's own `Access-Control-*` headers are dropped from it: whether a browser may
 * read an answer is Keygate's decision, per key, never the backend's. Only requests with
 * an allowed `Origin` pay for this; the method is replaced on this response object alone.
 */
export function answerWithCors(res: ServerResponse, origin: string): void {
  const writeHead = res.writeHead as (this: ServerResponse, status: number, message?: string | string[], headers?: string[]) => ServerResponse;
  res.writeHead = function corsWriteHead(this: ServerResponse, status: number, ...args: HeadArgs) {
    const [a, b] = args;
    if (typeof a === 'string') return writeHead.call(this, status, a, decorate(b, origin));
    return writeHead.call(this, status, decorate(a, origin));
  } as ServerResponse['writeHead'];
}
