import type { Socket } from 'node:net';
import { ERRORS, type ErrorCode } from '../errors/catalogue.ts';
import { METHODS } from '../policy/route-template.ts';
import { nextRequestId } from './request-id.ts';

const REASONS: Record<number, string> = { 400: 'Bad Request', 405: 'Method Not Allowed', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' };

function codeOf(err: NodeJS.ErrnoException): ErrorCode {
  if (err.code === 'HPE_HEADER_OVERFLOW') return 'HEADERS_TOO_LARGE';
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_REQUEST_HEADERS_TIMEOUT') return 'REQUEST_TIMEOUT';
  return 'MALFORMED_REQUEST';
}

/**
 * The server's `clientError`: a request Node's parser refuses (malformed framing, headers
 * over the limit, headers or request past their deadline) gets the same JSON refusal as
 * every other, with a code and a request id, where Node's own answer has an empty body.
 * Written on the socket (there is no response object yet), then the connection closes,
 * as Node does. Nothing is written when an answer is already under way on the connection
 * or the socket cannot be written.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  const started = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  // Bytes after a request that said `Connection: close`: they are not read, and the answer
  // under way still goes out (the connection closes after it, as that request asked); a
  // 400 in its place would lose an answer whose request the backend already acted on.
  if (err.code === 'HPE_CLOSED_CONNECTION' && started !== null && started !== undefined) return;
  if (err.code !== 'ECONNRESET' && socket.writable && started?.headersSent !== true) refuseOnSocket(socket, codeOf(err));
  socket.destroy();
}

/**
 * A server's `connect`: Node hands a `CONNECT` request (a tunnel) to this event instead of
 * the request handler, and with no listener closes the connection without a word. Keygate
 * opens no tunnels: 405 with the methods the listener takes (`allow`), then the connection closes.
 */
export function connectRefusal(allow: string): (req: unknown, socket: Socket) => void {
  return (_req, socket) => {
    if (socket.writable) refuseOnSocket(socket, 'METHOD_NOT_ALLOWED', `allow: ${allow}\r\n`);
    socket.destroy();
  };
}

/** The proxy listener's methods. */
export const PROXY_METHODS = METHODS.join(', ');

function refuseOnSocket(socket: Socket, code: ErrorCode, extraHeaders = ''): void {
  const { status, message } = ERRORS[code];
  const requestId = nextRequestId();
  const body = JSON.stringify({ error: { status, code, message }, requestId });
  socket.write(
    `HTTP/1.1 ${status} ${REASONS[status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `cache-control: no-store\r\nx-request-id: ${requestId}\r\n${extraHeaders}connection: close\r\n\r\n${body}`,
  );
}
