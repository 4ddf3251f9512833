import type { ServerResponse } from 'node:http';
import { ERRORS, type ErrorCode } from './catalogue.ts';
import type { KeygateError } from './keygate-error.ts';

/**
 * The challenge of every 401 Keygate itself answers (RFC 9110 §11.6.1: a 401 carries one):
 * the scheme is an API key, sent in the `Texture-Api-Key` header. A constant, so the 401
 * flood pays one more header, not a string built per refusal.
 */
const API_KEY_CHALLENGE = 'ApiKey realm="keygate", header="Texture-Api-Key"';

/** The body up to the request id, per catalogue entry: a refusal flood re-serialises nothing. */
const PREFIXES = new Map<ErrorCode, string>();

function bodyOf(err: KeygateError, requestId: string): string {
  const entry = ERRORS[err.code];
  if (err.status !== entry.status || err.message !== entry.message || err.field !== undefined) {
    const error = err.field === undefined ? { status: err.status, code: err.code, message: err.message } : { status: err.status, code: err.code, message: err.message, field: err.field };
    return JSON.stringify({ error, requestId });
  }
  let prefix = PREFIXES.get(err.code);
  if (prefix === undefined) {
    const whole = JSON.stringify({ error: { status: err.status, code: err.code, message: err.message }, requestId: '' });
    prefix = whole.slice(0, -2); // without the closing `"}`
    PREFIXES.set(err.code, prefix);
  }
  // Request ids are Keygate's own (hex, '-', base36): nothing in them needs escaping.
  return prefix + requestId + '"}';
}

/**
 * The single place that writes an error response: JSON with a stable code and the
 * request id, `cache-control: no-store` so no shared cache keeps a refusal.
 */
export function renderError(res: ServerResponse, err: KeygateError, requestId: string): void {
  if (res.headersSent) {
    // Too late for a status line: cut the connection so the client sees a failure, not a truncated 200.
    res.destroy(err);
    return;
  }
  const body = bodyOf(err, requestId);
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-request-id': requestId,
  };
  // By the catalogue's status, not the answer's: a backend's own 401 relayed as
  // UPSTREAM_ERROR is not a refusal of the caller's key.
  if (ERRORS[err.code].status === 401) headers['www-authenticate'] = API_KEY_CHALLENGE;
  if (err.headers !== undefined) Object.assign(headers, err.headers);
  res.writeHead(err.status, headers);
  res.end(body);
}
