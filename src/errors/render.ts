import type { ServerResponse } from 'node:http';
import { KeygateError } from './keygate-error.ts';

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
  const body = JSON.stringify({
    error: { status: err.status, code: err.code, message: err.message },
    requestId,
  });
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-request-id': requestId,
  };
  if (err.headers !== undefined) Object.assign(headers, err.headers);
  res.writeHead(err.status, headers);
  res.end(body);
}
