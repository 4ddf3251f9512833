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

type Controller = Dispatcher.DispatchController;

// The handlers below are classes, not object literals with closures: one allocation per
// request, and undici calls the same shapes every time. Completion is reported to a sink
// object rather than through a promise, so a request in flight costs no promise and no
// microtask hop (the proxy is CPU-bound at load; every hop shows in its throughput).

/** Where a streamed exchange reports its end: exactly one call. */
export interface StreamSink {
  /** The answer went out (or was cut after its status line); `status` is what the client got. */
  streamed(status: number): void;
  /** Nothing was written to the client; the caller renders the error. */
  streamFailed(err: KeygateError): void;
}

class StreamHandler implements Dispatcher.DispatchHandler {
  readonly #res: ServerResponse;
  readonly #requestId: string;
  readonly #sink: StreamSink;
  #controller: Controller | null = null;
  #status = 0;
  #settled = false;
  readonly #onClose = (): void => {
    if (!this.#res.writableFinished) this.#controller?.abort(new Error('client closed the connection'));
  };

  constructor(res: ServerResponse, requestId: string, sink: StreamSink) {
    this.#res = res;
    this.#requestId = requestId;
    this.#sink = sink;
    res.once('close', this.#onClose);
  }

  #finish(err: KeygateError | null): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#res.off('close', this.#onClose);
    if (err === null) this.#sink.streamed(this.#status);
    else this.#sink.streamFailed(err);
  }

  onRequestStart(c: Controller): void {
    this.#controller = c;
    if (this.#res.destroyed) c.abort(new Error('client closed the connection'));
  }

  onResponseStart(_c: Controller, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return;
    this.#status = statusCode;
    this.#res.writeHead(statusCode, responseHeaders(headers, this.#requestId));
  }

  onResponseData(c: Controller, chunk: Buffer): void {
    if (!this.#res.write(chunk)) {
      c.pause();
      this.#res.once('drain', () => c.resume());
    }
  }

  onResponseEnd(): void {
    this.#res.end();
    this.#finish(null);
  }

  onResponseError(_c: Controller, err: Error): void {
    if (this.#res.headersSent) {
      // Mid-body failure: the status line is gone, so cut the connection rather than end cleanly.
      this.#res.destroy(err);
      this.#finish(null);
      return;
    }
    this.#finish(upstreamError(err));
  }
}

/**
 * Stage 4 (streaming): pipe the backend's answer to the client as it arrives, with
 * backpressure both ways. Used when nothing in the response needs checking.
 */
export function streamForward(upstream: Dispatcher, request: UpstreamRequest, res: ServerResponse, requestId: string, sink: StreamSink): void {
  upstream.dispatch(
    { method: request.method as Dispatcher.HttpMethod, path: request.path, headers: request.headers, body: request.body },
    new StreamHandler(res, requestId, sink),
  );
}

export interface BufferedResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** Where a buffered exchange reports its end: exactly one call. */
export interface BufferSink {
  answered(response: BufferedResponse): void;
  bufferFailed(err: KeygateError): void;
}

/** The largest backend answer Keygate will hold in memory to check it. */
export const MAX_CHECKED_RESPONSE_BYTES = 16 * 1024 * 1024;

class BufferHandler implements Dispatcher.DispatchHandler {
  readonly #sink: BufferSink;
  readonly #maxBytes: number;
  #status = 0;
  #headers: BufferedResponse['headers'] = {};
  #first: Buffer | null = null;
  #more: Buffer[] | null = null;
  #size = 0;

  constructor(sink: BufferSink, maxBytes: number) {
    this.#sink = sink;
    this.#maxBytes = maxBytes;
  }

  // undici picks the handler API by this method's presence.
  onRequestStart(): void {}

  onResponseStart(_c: Controller, statusCode: number, headers: BufferedResponse['headers']): void {
    if (statusCode < 200) return;
    this.#status = statusCode;
    this.#headers = headers;
  }

  onResponseData(c: Controller, chunk: Buffer): void {
    this.#size += chunk.length;
    if (this.#size > this.#maxBytes) {
      c.abort(new KeygateError('UPSTREAM_BAD_RESPONSE', { detail: `response larger than ${this.#maxBytes} bytes` }));
      return;
    }
    if (this.#first === null) this.#first = chunk;
    else (this.#more ??= [this.#first]).push(chunk);
  }

  onResponseEnd(): void {
    const body = this.#more !== null ? Buffer.concat(this.#more, this.#size) : (this.#first ?? Buffer.alloc(0));
    this.#sink.answered({ status: this.#status, headers: this.#headers, body });
  }

  onResponseError(_c: Controller, err: Error): void {
    this.#sink.bufferFailed(upstreamError(err));
  }
}

/** Stage 4 (buffered): fetch the whole answer so it can be checked before the client sees a byte. */
export function bufferedDispatch(upstream: Dispatcher, request: UpstreamRequest, sink: BufferSink, maxBytes = MAX_CHECKED_RESPONSE_BYTES): void {
  upstream.dispatch(
    { method: request.method as Dispatcher.HttpMethod, path: request.path, headers: request.headers, body: request.body },
    new BufferHandler(sink, maxBytes),
  );
}

/** bufferedDispatch as a promise, for callers off the hot path (attribute lookups). */
export function bufferedRequest(upstream: Dispatcher, request: UpstreamRequest, maxBytes = MAX_CHECKED_RESPONSE_BYTES): Promise<BufferedResponse> {
  return new Promise((resolve, reject) => {
    bufferedDispatch(upstream, request, { answered: resolve, bufferFailed: reject }, maxBytes);
  });
}
