import type { IncomingMessage, ServerResponse } from 'node:http';
import { type KeygateError, sharedRefusal } from '../errors/keygate-error.ts';
import { ALLOW_HEADERS, ALLOW_METHODS, PREFLIGHT_MAX_AGE } from './cors-headers.ts';
import type { KnownOrigins } from './known-origins.ts';

/** A CORS preflight (Fetch standard §4.8): OPTIONS with Origin and Access-Control-Request-Method. */
export function isPreflight(req: IncomingMessage): boolean {
  return req.method === 'OPTIONS' && req.headers.origin !== undefined && req.headers['access-control-request-method'] !== undefined;
}

const UNKNOWN_ORIGIN = sharedRefusal('ORIGIN_NOT_ALLOWED', 'preflight from an origin no active connect key allows');

/**
 * Answers a preflight without a key and without the backend: 204 with the CORS grant for
 * a known origin (echoed exactly, never `*`), or a refusal without any
 * `Access-Control-Allow-*` header, which the browser reads as "not allowed".
 */
export function answerPreflight(req: IncomingMessage, res: ServerResponse, known: KnownOrigins, requestId: string): KeygateError | null {
  const origin = req.headers.origin!;
  if (!known.has(origin)) {
    res.setHeader('vary', 'Origin');
    return UNKNOWN_ORIGIN;
  }
  res.writeHead(204, {
    'access-control-allow-origin': origin,
    'access-control-allow-methods': ALLOW_METHODS,
    'access-control-allow-headers': ALLOW_HEADERS,
    'access-control-max-age': PREFLIGHT_MAX_AGE,
    vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
    'cache-control': 'no-store',
    'x-request-id': requestId,
  });
  res.end();
  return null;
}
