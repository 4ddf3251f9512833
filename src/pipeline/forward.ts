import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { KeygateError } from '../errors/keygate-error.ts';
import { responseHeaders } from './mutate.ts';
import { upstreamError } from './upstream.ts';

export interface UpstreamRequest {
  readonly method: string;
  /** Canonical path plus `?query` when there is one. */
  readonly path: string;
  readonly headers: string[];
  readonly body: IncomingMessage | Buffer | null;
}

type Handler = Dispatcher.DispatchHandler;
type Controller = Dispatcher.DispatchController;

/**
 * Stage 4 (streaming): pipe the backend's answer to the client as it arrives, with
 * backpressure both ways. Used when nothing in the response needs checking. Resolves
 * with the status sent; rejects (before any byte is written) with a KeygateError.
 */
export function streamForward(upstream: Dispatcher, request: UpstreamRequest, res: ServerResponse, requestId: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let controller: Controller | null = null;
    let status = 0;
    let settled = false;
    const onClose = (): void => {
      if (!res.writableFinished) controller?.abort(new Error('client closed the connection'));
    };
    res.once('close', onClose);
    const finish = (err: KeygateError | null): void => {
      if (settled) return;
      settled = true;
      res.off('close', onClose);
      if (err === null) resolve(status);
      else reject(err);
    };
    const handler: Handler = {
      onRequestStart(c) {
        controller = c;
        if (res.destroyed) c.abort(new Error('client closed the connection'));
      },
      onResponseStart(_c, statusCode, headers) {
        if (statusCode < 200) return;
        status = statusCode;
        res.writeHead(statusCode, responseHeaders(headers as Record<string, string | string[] | undefined>, requestId));
      },
      onResponseData(c, chunk) {
        if (!res.write(chunk)) {
          c.pause();
          res.once('drain', () => c.resume());
        }
      },
      onResponseEnd() {
        res.end();
        finish(null);
      },
      onResponseError(_c, err) {
        if (res.headersSent) {
          // Mid-body failure: the status line is gone, so cut the connection rather than end cleanly.
          res.destroy(err);
          finish(null);
          return;
        }
        finish(upstreamError(err));
      },
    };
    upstream.dispatch({ method: request.method as Dispatcher.HttpMethod, path: request.path, headers: request.headers, body: request.body }, handler);
  });
}

export interface BufferedResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** The largest backend answer Keygate will hold in memory to check it. */
export const MAX_CHECKED_RESPONSE_BYTES = 16 * 1024 * 1024;

/** Stage 4 (buffered): fetch the whole answer so it can be checked before the client sees a byte. */
export function bufferedRequest(upstream: Dispatcher, request: UpstreamRequest, maxBytes = MAX_CHECKED_RESPONSE_BYTES): Promise<BufferedResponse> {
  return new Promise((resolve, reject) => {
    let status = 0;
    let headers: BufferedResponse['headers'] = {};
    const chunks: Buffer[] = [];
    let size = 0;
    const handler: Handler = {
      // undici picks the handler API by this method's presence.
      onRequestStart() {},
      onResponseStart(_c, statusCode, h) {
        if (statusCode < 200) return;
        status = statusCode;
        headers = h as BufferedResponse['headers'];
      },
      onResponseData(c, chunk) {
        size += chunk.length;
        if (size > maxBytes) {
          c.abort(new KeygateError('UPSTREAM_BAD_RESPONSE', { detail: `response larger than ${maxBytes} bytes` }));
          return;
        }
        chunks.push(chunk);
      },
      onResponseEnd() {
        resolve({ status, headers, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) });
      },
      onResponseError(_c, err) {
        reject(upstreamError(err));
      },
    };
    upstream.dispatch({ method: request.method as Dispatcher.HttpMethod, path: request.path, headers: request.headers, body: request.body }, handler);
  });
}
