import type { IncomingMessage } from 'node:http';
import { KeygateError } from '../errors/keygate-error.ts';
import { parseStrictJson } from './strict-json.ts';

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;\s*charset\s*=\s*"?utf-8"?\s*)?$/i;

/** Checks the framing headers of a body the policy must read, before a byte is read. */
export function checkJsonBodyHeaders(contentType: string | undefined, contentEncoding: string | undefined, contentLength: string | undefined, maxBytes: number): void {
  if (contentEncoding !== undefined && contentEncoding.trim().toLowerCase() !== 'identity') {
    // Compressed bodies would be judged on one decoding and run on another: refuse (invariant 4).
    throw new KeygateError('UNSUPPORTED_MEDIA_TYPE', { detail: `content-encoding ${contentEncoding}` });
  }
  if (contentType === undefined || !JSON_TYPE.test(contentType)) {
    throw new KeygateError('UNSUPPORTED_MEDIA_TYPE', { detail: `content-type ${contentType ?? '(none)'}` });
  }
  if (contentLength !== undefined && Number(contentLength) > maxBytes) {
    throw new KeygateError('BODY_TOO_LARGE', { detail: `content-length ${contentLength} > ${maxBytes}` });
  }
}

/** Reads the whole request body, refusing more than `maxBytes` without buffering the excess. */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        req.resume(); // drain and discard the rest so the 413 can be written
        reject(new KeygateError('BODY_TOO_LARGE', { detail: `body over ${maxBytes} bytes` }));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new KeygateError('INVALID_JSON', { detail: `body could not be read: ${err.message}`, cause: err }));
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/** How much of a refused request's unread body Keygate reads and discards before closing, at most. */
export const DISCARD_MAX_BYTES = 8 * 1024 * 1024;
export const DISCARD_MAX_MS = 5_000;

/**
 * Whether a refusal must wait for the rest of the request body: the connection closes
 * after this response (the client sent `Connection: close`), and the client is still
 * sending a body of at most DISCARD_MAX_BYTES. Closing a socket with unread bytes makes
 * the kernel reset it, and the reset can destroy the refusal before the client reads it
 * (it sees ECONNRESET or EPIPE instead of a 4xx). On a kept-alive connection Node reads
 * and discards the rest itself, so nothing waits there.
 */
export function mustDiscardBefore(req: IncomingMessage, closing: boolean): boolean {
  if (!closing || req.complete || req.destroyed) return false;
  const length = req.headers['content-length'];
  if (length === undefined) return req.headers['transfer-encoding'] !== undefined;
  const bytes = Number(length);
  return bytes > 0 && bytes <= DISCARD_MAX_BYTES;
}

/**
 * Reads and discards the rest of the request body, then calls `then` once: at its end, or
 * after DISCARD_MAX_BYTES or DISCARD_MAX_MS, or when the client goes away.
 */
export function discardBody(req: IncomingMessage, then: () => void): void {
  let bytes = 0;
  let done = false;
  const finish = (): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    req.off('data', onData);
    req.off('end', finish);
    req.off('error', finish);
    req.off('close', finish);
    then();
  };
  const onData = (chunk: Buffer): void => {
    bytes += chunk.length;
    if (bytes > DISCARD_MAX_BYTES) finish();
  };
  const timer = setTimeout(finish, DISCARD_MAX_MS);
  req.on('data', onData);
  req.once('end', finish);
  req.once('error', finish);
  req.once('close', finish);
  req.resume();
}

export function parseJsonBody(body: Buffer): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw new KeygateError('INVALID_JSON', { detail: 'body is not UTF-8' });
  }
  return parseStrictJson(text);
}
