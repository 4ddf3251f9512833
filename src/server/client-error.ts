import type { Socket } from 'node:net';
import { ERRORS, type ErrorCode } from '../errors/catalogue.ts';
import { nextRequestId } from './request-id.ts';

const REASONS: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' };

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
  if (err.code !== 'ECONNRESET' && socket.writable && started?.headersSent !== true) {
    const code = codeOf(err);
    const { status, message } = ERRORS[code];
    const requestId = nextRequestId();
    const body = JSON.stringify({ error: { status, code, message }, requestId });
    socket.write(
      `HTTP/1.1 ${status} ${REASONS[status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
        `cache-control: no-store\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
