import type { Dispatcher } from 'undici';
import { KeygateError } from '../../errors/keygate-error.ts';
import { type Admission, type AdmissionWaiter, LOOKUP_CLASS } from '../admission.ts';

type Controller = Dispatcher.DispatchController;
type Handler = Dispatcher.DispatchHandler;

/** Passes every event on and gives the connection back once the exchange is over. */
class ReleasingHandler implements Handler {
  readonly #inner: Handler;
  readonly #admission: Admission;
  #held = true;

  constructor(inner: Handler, admission: Admission) {
    this.#inner = inner;
    this.#admission = admission;
  }

  #release(): void {
    if (!this.#held) return;
    this.#held = false;
    this.#admission.release(LOOKUP_CLASS);
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
 * An undici interceptor that puts Keygate's attribute lookups through the same admission
 * as forwarded requests, in their own class: a flood of lookups (distinct ids of a key
 * with conditions) waits for or is refused its share instead of taking the pool.
 */
export function admitLookups(admission: Admission): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (opts, handler) => {
    const go = (): void => {
      dispatch(opts, new ReleasingHandler(handler, admission));
    };
    if (admission.tryAcquire(LOOKUP_CLASS)) {
      go();
      return true;
    }
    const queued = admission.enqueue(LOOKUP_CLASS, new QueuedLookup(go, handler));
    if (queued instanceof KeygateError) handler.onResponseError?.(refusedController(queued), queued);
    return true;
  };
}
