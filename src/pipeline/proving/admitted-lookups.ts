import type { Dispatcher } from 'undici';
import { KeygateError } from '../../errors/keygate-error.ts';
import { askerOf, type Principal } from '../../keys/principal.ts';
import { type Admission, type AdmissionWaiter, LOOKUP_CLASS } from '../admission.ts';

type Controller = Dispatcher.DispatchController;
type Handler = Dispatcher.DispatchHandler;

/** Passes every event on and gives the connection back once the exchange is over. */
class ReleasingHandler implements Handler {
  readonly #inner: Handler;
  readonly #admission: Admission;
  readonly #key: string | undefined;
  #held = true;

  constructor(inner: Handler, admission: Admission, key: string | undefined) {
    this.#inner = inner;
    this.#admission = admission;
    this.#key = key;
  }

  #release(): void {
    if (!this.#held) return;
    this.#held = false;
    this.#admission.release(LOOKUP_CLASS, this.#key);
  }

  onRequestStart(c: Controller, context: unknown): void {
    this.#inner.onRequestStart?.(c, context);
  }

  onResponseStart(c: Controller, status: number, headers: Record<string, string | string[] | undefined>, message?: string): void {
    this.#inner.onResponseStart?.(c, status, headers, message);
  }

  onResponseData(c: Controller, chunk: Buffer): void {
    this.#inner.onResponseData?.(c, chunk);
  }

  onResponseEnd(c: Controller, trailers: Record<string, string | string[] | undefined>): void {
    this.#release();
    this.#inner.onResponseEnd?.(c, trailers);
  }

  onResponseError(c: Controller, err: Error): void {
    this.#release();
    this.#inner.onResponseError?.(c, err);
  }
}

/** The controller a refused lookup's handler sees: the request never started. */
function refusedController(err: Error): Controller {
  return { aborted: true, paused: false, reason: err, abort() {}, pause() {}, resume() {} };
}

class QueuedLookup implements AdmissionWaiter {
  readonly #go: () => void;
  readonly #handler: Handler;

  constructor(go: () => void, handler: Handler) {
    this.#go = go;
    this.#handler = handler;
  }

  admitted(): void {
    this.#go();
  }

  refused(err: KeygateError): void {
    this.#handler.onResponseError?.(refusedController(err), err);
  }
}

/**
 * Who a lookup is made for (askerOf), from the identity headers Keygate itself sets on it
 * (attributes.ts, Connect's device list): a scoped key's end user, else the key; undefined
 * when they are absent.
 */
function keyOf(headers: Dispatcher.DispatchOptions['headers']): string | undefined {
  if (!Array.isArray(headers)) return undefined;
  let id: string | undefined;
  let type: string | undefined;
  let referenceId: string | null = null;
  for (let i = 0; i < headers.length - 1; i += 2) {
    const name = headers[i];
    if (name === 'x-keygate-key-id') id = headers[i + 1] as string;
    else if (name === 'x-keygate-key-type') type = headers[i + 1] as string;
    else if (name === 'x-keygate-reference-id') referenceId = headers[i + 1] as string;
  }
  return id === undefined ? undefined : askerOf({ id, type: (type ?? '') as Principal['type'], referenceId });
}

/**
 * An undici interceptor that puts Keygate's attribute lookups through the same admission
 * as forwarded requests, in their own class: a flood of lookups (distinct ids of a key
 * with conditions) waits for or is refused its share instead of taking the pool, and one
 * key's lookups in flight never exceed three quarters of that share (perKeyBound): past it
 * that key's lookups wait in the queue (503 `UPSTREAM_SATURATED` after its timeout) while
 * other keys' ownership proofs go past them.
 */
export function admitLookups(admission: Admission): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (opts, handler) => {
    const key = keyOf(opts.headers);
    const go = (): void => {
      dispatch(opts, new ReleasingHandler(handler, admission, key));
    };
    if (admission.tryAcquire(LOOKUP_CLASS, key)) {
      go();
      return true;
    }
    const queued = admission.enqueue(LOOKUP_CLASS, new QueuedLookup(go, handler), key);
    if (queued instanceof KeygateError) handler.onResponseError?.(refusedController(queued), queued);
    return true;
  };
}
