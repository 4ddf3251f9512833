import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { KeygateError } from '../errors/keygate-error.ts';
import type { AnswerBudget, BudgetedAnswer } from './forwarding/answer-budget.ts';
import { bodyTimeoutOf, upstreamError } from './forwarding/upstream.ts';
import { responseHeaders } from './mutate.ts';
import { PartsResponse } from './proving/parts.ts';

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

/**
 * What a backend exchange ends with when its client went away first: Keygate aborted it,
 * so it is nothing to count against the backend. The one instance, compared by identity.
 */
export const CLIENT_CLOSED: KeygateError = Object.freeze(new KeygateError('UPSTREAM_UNREACHABLE', { detail: 'client closed the connection' }));

/** Where a streamed exchange reports its end: exactly one call. */
export interface StreamSink {
  /** The answer went out whole, or the client went away after its status line; `status` is what the client got. */
  streamed(status: number): void;
  /** The backend failed after the status line went out: the client's connection was cut, never ended cleanly. */
  streamCut(status: number, err: KeygateError): void;
  /** Nothing was written to the client; the caller renders the error (CLIENT_CLOSED: there is no one to render it to). */
  streamFailed(err: KeygateError): void;
}

class StreamHandler implements Dispatcher.DispatchHandler {
  readonly #res: ServerResponse;
  readonly #requestId: string;
  readonly #sink: StreamSink;
  /** Header pairs Keygate adds to the answer (the RateLimit fields), or null. */
  readonly #added: readonly string[] | null;
  /** The route has conditions: only the headers about the response go out (mutate.ts responseHeaders). */
  readonly #conditioned: boolean;
  #controller: Controller | null = null;
  #status = 0;
  #settled = false;
  #clientGone = false;
  /** The longest the client may leave the answer paused (take none of it) before the exchange is cut. */
  readonly #stallMs: number;
  /** The backend is paused because the client's buffer is full, until its 'drain'. */
  #paused = false;
  /** Armed at the first pause and refreshed at each later one: one timer per answer, not one per pause. */
  #stallTimer: NodeJS.Timeout | undefined = undefined;
  readonly #onClose = (): void => {
    if (this.#res.writableFinished) return;
    this.#clientGone = true;
    this.#controller?.abort(CLIENT_CLOSED);
  };
  readonly #onDrain = (): void => {
    this.#paused = false;
    this.#controller?.resume();
  };
  /**
   * Still paused a whole bound after the last pause: a client that stopped reading would
   * otherwise hold its backend connection for as long as its socket stays open (undici's
   * body timeout does not run while a handler holds the answer paused). The backend
   * exchange is aborted and the client's connection cut (onResponseError → streamCut).
   */
  readonly #onStall = (): void => {
    if (!this.#paused || this.#settled) return;
    this.#controller?.abort(new KeygateError('UPSTREAM_TIMEOUT', { detail: `the client took none of the answer for ${this.#stallMs} ms (--upstream-body-timeout)` }));
  };

  constructor(res: ServerResponse, requestId: string, sink: StreamSink, added: readonly string[] | null, conditioned: boolean, stallMs: number) {
    this.#stallMs = stallMs;
    this.#res = res;
    this.#requestId = requestId;
    this.#sink = sink;
    this.#added = added;
    this.#conditioned = conditioned;
    res.once('close', this.#onClose);
  }

  /** True the first time: the exchange is over and reports exactly once. */
  #settle(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    this.#res.off('close', this.#onClose);
    if (this.#stallTimer !== undefined) {
      clearTimeout(this.#stallTimer);
      this.#res.off('drain', this.#onDrain);
    }
    return true;
  }

  onRequestStart(c: Controller): void {
    this.#controller = c;
    if (this.#res.destroyed) {
      this.#clientGone = true;
      c.abort(CLIENT_CLOSED);
    }
  }

  onResponseStart(_c: Controller, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return;
    this.#status = statusCode;
    this.#res.writeHead(statusCode, responseHeaders(headers, this.#requestId, undefined, this.#added, this.#conditioned));
  }

  onResponseData(c: Controller, chunk: Buffer): void {
    if (!this.#res.write(chunk)) {
      c.pause();
      this.#paused = true;
      this.#res.once('drain', this.#onDrain);
      if (this.#stallTimer === undefined) {
        this.#stallTimer = setTimeout(this.#onStall, this.#stallMs);
        this.#stallTimer.unref();
      } else this.#stallTimer.refresh();
    }
  }

  onResponseEnd(): void {
    this.#res.end();
    if (this.#settle()) this.#sink.streamed(this.#status);
  }

  onResponseError(_c: Controller, err: Error): void {
    if (!this.#settle()) return;
    if (!this.#res.headersSent) {
      this.#sink.streamFailed(this.#clientGone ? CLIENT_CLOSED : upstreamError(err));
      return;
    }
    // Mid-body failure: the status line is gone, so cut the connection rather than end cleanly.
    this.#res.destroy(err);
    if (this.#clientGone) this.#sink.streamed(this.#status);
    else this.#sink.streamCut(this.#status, upstreamError(err));
  }
}

/**
 * Stage 4 (streaming): pipe the backend's answer to the client as it arrives, with
 * backpressure both ways. Used when nothing in the response needs checking. A client that
 * leaves the answer paused (takes none of it) for the pool's `--upstream-body-timeout`, the
 * bound a silent backend gets, has the exchange cut: no stopped reader holds a backend
 * connection without bound.
 * `conditioned`: the route has conditions (a scoped key's proven routes, such as a
 * command): of the backend's headers only those about the response go out, on every
 * status, as on the routes whose answers are checked.
 */
export function streamForward(
  upstream: Dispatcher,
  request: UpstreamRequest,
  res: ServerResponse,
  requestId: string,
  sink: StreamSink,
  added: readonly string[] | null = null,
  conditioned = false,
): void {
  upstream.dispatch(
    { method: request.method as Dispatcher.HttpMethod, path: request.path, headers: request.headers, body: request.body },
    new StreamHandler(res, requestId, sink, added, conditioned, bodyTimeoutOf(upstream)),
  );
}

export interface BufferedResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
  /** The body as the pieces it arrived in, when more than one: `body` joins them when first read (proving/parts.ts). */
  readonly parts?: readonly Buffer[];
}

/** Where a buffered exchange reports its end: exactly one call. */
export interface BufferSink {
  answered(response: BufferedResponse): void;
  bufferFailed(err: KeygateError): void;
}

/**
 * Answers smaller than this are not counted in `--checked-answer-budget`: the common small
 * answer costs the budget nothing (no map entry, no listener), and what goes uncounted is
 * at most this much per backend connection.
 */
const BUDGET_FROM = 64 * 1024;

/** The largest backend answer Keygate will hold in memory to check it. */
const MAX_CHECKED_RESPONSE_BYTES = 16 * 1024 * 1024;

/** Sent for an answer cut to keep the checked answers within `--checked-answer-budget`. */
const OVER_BUDGET: KeygateError = Object.freeze(
  new KeygateError('ANSWERS_SATURATED', { detail: 'the answers being checked hold --checked-answer-budget; this one was among the largest', headers: { 'retry-after': '1' } }),
);

class BufferHandler implements Dispatcher.DispatchHandler, BudgetedAnswer {
  readonly #sink: BufferSink;
  readonly #maxBytes: number;
  /** The client waiting for the checked answer: when it goes away, the backend exchange is aborted (null: a lookup). */
  readonly #client: ServerResponse | null;
  /** Counts the answer from its first byte until its client's answer is over (null: not counted, a lookup). */
  readonly #budget: AnswerBudget | null;
  readonly party: string;
  #controller: Controller | null = null;
  #clientGone = false;
  #reading = true;
  #status = 0;
  #headers: BufferedResponse['headers'] = {};
  #first: Buffer | null = null;
  #more: Buffer[] | null = null;
  #size = 0;
  readonly #onClose = (): void => {
    this.#budget?.release(this);
    if (!this.#reading) return;
    this.#clientGone = true;
    this.#controller?.abort(CLIENT_CLOSED);
  };

  constructor(sink: BufferSink, maxBytes: number, client: ServerResponse | null, budget: AnswerBudget | null, party: string) {
    this.#sink = sink;
    this.#maxBytes = maxBytes;
    this.#client = client;
    this.#budget = client === null ? null : budget;
    this.party = party;
    client?.once('close', this.#onClose);
  }

  /** Counted in the budget (from BUDGET_FROM bytes on), until its client has it whole. */
  #counted = false;
  #onHandedOver: (() => void) | null = null;

  /** From its first BUDGET_FROM bytes on, the answer is counted until it is handed to its client whole. */
  #count(n: number): void {
    if (this.#counted) {
      this.#budget!.grow(this, n);
      return;
    }
    this.#counted = true;
    // 'prefinish': ended, all of it given to the socket; what the client leaves untaken is
    // the held answers' to bound from then on.
    this.#onHandedOver = () => this.#budget!.release(this);
    this.#client!.once('prefinish', this.#onHandedOver);
    this.#budget!.grow(this, this.#size);
  }

  get reading(): boolean {
    return this.#reading;
  }

  cut(): void {
    this.#controller?.abort(OVER_BUDGET);
  }

  // undici picks the handler API by this method's presence.
  onRequestStart(c: Controller): void {
    this.#controller = c;
    if (this.#client?.destroyed === true) this.#onClose();
  }

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
    if (this.#budget !== null && this.#size >= BUDGET_FROM) this.#count(chunk.length);
  }

  onResponseEnd(): void {
    this.#reading = false;
    // A counted answer keeps its close listener: it releases the answer if the client goes first.
    if (!this.#counted) this.#client?.off('close', this.#onClose);
    if (this.#more !== null) this.#sink.answered(new PartsResponse(this.#status, this.#headers, this.#more, this.#size));
    else this.#sink.answered({ status: this.#status, headers: this.#headers, body: this.#first ?? Buffer.alloc(0) });
  }

  onResponseError(_c: Controller, err: Error): void {
    this.#reading = false;
    this.#budget?.release(this);
    this.#client?.off('close', this.#onClose);
    if (this.#onHandedOver !== null) this.#client?.off('prefinish', this.#onHandedOver);
    this.#sink.bufferFailed(this.#clientGone ? CLIENT_CLOSED : upstreamError(err));
  }
}

/**
 * Stage 4 (buffered): fetch the whole answer so it can be checked before the client sees a
 * byte. `client` is the response waiting for it (null for Keygate's own lookups).
 */
export function bufferedDispatch(
  upstream: Dispatcher,
  request: UpstreamRequest,
  sink: BufferSink,
  client: ServerResponse | null,
  maxBytes = MAX_CHECKED_RESPONSE_BYTES,
  budget: AnswerBudget | null = null,
  party = '',
): void {
  upstream.dispatch({ method: request.method as Dispatcher.HttpMethod, path: request.path, headers: request.headers, body: request.body }, new BufferHandler(sink, maxBytes, client, budget, party));
}

/** bufferedDispatch as a promise, for callers off the hot path (attribute lookups). */
export function bufferedRequest(upstream: Dispatcher, request: UpstreamRequest, maxBytes = MAX_CHECKED_RESPONSE_BYTES): Promise<BufferedResponse> {
  return new Promise((resolve, reject) => {
    bufferedDispatch(upstream, request, { answered: resolve, bufferFailed: reject }, null, maxBytes);
  });
}
