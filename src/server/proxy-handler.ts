import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { KeygateError } from '../errors/keygate-error.ts';
import { renderError } from '../errors/render.ts';
import type { KeyCache } from '../keys/key-cache.ts';
import type { Principal } from '../keys/principal.ts';
import type { AccessLog } from '../observability/access-log.ts';
import { DECISIONS, type DecisionIndex, type Metrics } from '../observability/metrics.ts';
import type { PolicyHolder } from '../policy/policy-holder.ts';
import type { AttributeSource } from '../pipeline/attributes.ts';
import { authenticate, KEY_HEADER } from '../pipeline/authenticate.ts';
import { decide, isKnownMethod } from '../pipeline/authorize.ts';
import { canonicalize, type Target } from '../pipeline/canonical-path.ts';
import type { CompiledPolicy } from '../policy/model.ts';
import { bufferedDispatch, streamForward, type BufferedResponse, type BufferSink, type StreamSink } from '../pipeline/forward.ts';
import { responseHeaders } from '../pipeline/mutate.ts';
import { plan, type Plan } from '../pipeline/plan.ts';
import type { CheckedResponse } from '../pipeline/response-checks.ts';
import type { TrustedHops } from '../pipeline/trusted-hops.ts';
import { discardBody, mustDiscardBefore, readBody } from '../pipeline/request-body.ts';
import { nextRequestId } from './request-id.ts';

export interface ProxyDeps {
  readonly policy: PolicyHolder;
  readonly keys: KeyCache;
  readonly upstream: Dispatcher;
  readonly attributes: AttributeSource;
  readonly access: AccessLog;
  readonly metrics: Metrics;
  readonly maxBodyBytes: number;
  /** `--trust-proxy`: null when no hop is trusted. */
  readonly trustedHops?: TrustedHops | null;
}

function decisionOf(status: number, err: KeygateError | undefined): DecisionIndex {
  if (err === undefined) return 0; // allow
  if (status === 401) return 1; // unauthenticated
  if (status === 403) return 2; // forbidden
  if (status < 500) return 3; // invalid
  return 4; // error
}

/** The route template for metrics and logs, also for refused requests (error path only). */
function routeLabel(policy: CompiledPolicy, method: string, target: Target): string {
  return isKnownMethod(method) ? (policy.matcher.match(method, target.segments)?.value.template.text ?? 'unmatched') : 'unmatched';
}

/** The path without the query (the query may carry filters worth keeping out of logs). */
function pathOf(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

function toKeygateError(err: unknown): KeygateError {
  if (err instanceof KeygateError) return err;
  return new KeygateError('INTERNAL_ERROR', { detail: err instanceof Error ? (err.stack ?? err.message) : String(err), cause: err });
}

/**
 * One request through the pipeline: authenticate → canonicalize → authorize/mutate (plan)
 * → forward, then one access line and the metrics. Every failure becomes a KeygateError
 * and goes through the single renderer.
 *
 * Written as one object whose methods run the stages, rather than an async function: on
 * a warm request (key cached, no lookup to wait for) every stage is synchronous, and the
 * only asynchronous edges are the backend's answer and the client's socket. An async
 * function here cost several promises and microtask hops per request, which at load is
 * CPU the proxy does not have (see the README's Performance section).
 */
class Exchange implements StreamSink, BufferSink {
  readonly #deps: ProxyDeps;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #started = performance.now();
  readonly #requestId = nextRequestId();
  #principal: Principal | undefined = undefined;
  #route = '-';
  #plan: Plan | null = null;
  #finished = false;
  /** A failure is being answered (perhaps after discarding the rest of the body). */
  #failing = false;
  /** List items dropped from the answer (access line). */
  #dropped = 0;

  constructor(deps: ProxyDeps, req: IncomingMessage, res: ServerResponse) {
    this.#deps = deps;
    this.#req = req;
    this.#res = res;
  }

  start(): void {
    this.#deps.metrics.inFlight++;
    try {
      const auth = authenticate(this.#req.headers[KEY_HEADER], this.#deps.keys, this.#req.socket);
      if (auth instanceof Promise) auth.then((p) => this.#authenticated(p), (err: unknown) => this.#fail(err));
      else this.#authenticated(auth);
    } catch (err) {
      this.#fail(err);
    }
  }

  #authenticated(principal: Principal | KeygateError): void {
    if (principal instanceof KeygateError) {
      this.#fail(principal);
      return;
    }
    this.#principal = principal;
    try {
      const req = this.#req;
      const target = canonicalize(req.url ?? '');
      const policy = this.#deps.policy.current;
      const method = req.method ?? 'GET';
      const decision = decide(policy, principal, method, target);
      if (decision instanceof KeygateError) {
        this.#route = routeLabel(policy, method, target);
        this.#fail(decision);
        return;
      }
      this.#route = decision.route?.template.text ?? 'undeclared';
      const planned = plan({ policy, attributes: this.#deps.attributes }, principal, {
        method,
        target,
        rawHeaders: req.rawHeaders,
        remoteAddress: req.socket.remoteAddress,
        trustedHop: this.#deps.trustedHops?.has(req.socket.remoteAddress) === true,
        requestId: this.#requestId,
        readBody: (max) => readBody(req, max),
        maxBodyBytes: this.#deps.maxBodyBytes,
      }, decision);
      if (planned instanceof Promise) planned.then((p) => this.#execute(p), (err: unknown) => this.#fail(err));
      else this.#execute(planned);
    } catch (err) {
      this.#fail(err);
    }
  }

  #execute(p: Plan): void {
    try {
      this.#plan = p;
      const body = p.body === 'stream' ? this.#req : p.body;
      const request = { method: p.method, path: p.path, headers: p.headers, body };
      if (p.check === null) streamForward(this.#deps.upstream, request, this.#res, this.#requestId, this);
      else bufferedDispatch(this.#deps.upstream, request, this);
    } catch (err) {
      this.#fail(err);
    }
  }

  // StreamSink
  streamed(status: number): void {
    this.#finish(status, undefined);
  }

  streamFailed(err: KeygateError): void {
    this.#fail(err);
  }

  // BufferSink
  answered(answer: BufferedResponse): void {
    try {
      const checked = this.#plan!.check!(answer);
      if (checked instanceof Promise) checked.then((c) => this.#release(c, answer.body), (err: unknown) => this.#fail(err));
      else this.#release(checked, answer.body);
    } catch (err) {
      this.#fail(err);
    }
  }

  bufferFailed(err: KeygateError): void {
    this.#fail(err);
  }

  /** Sends a checked answer: the backend's bytes, or Keygate's re-serialisation when items were dropped. */
  #release(checked: CheckedResponse, original: Buffer): void {
    // The count of dropped items goes to the metric and the access line, never to the client (invariant 10).
    if (checked.dropped !== undefined && checked.dropped > 0) {
      this.#dropped = checked.dropped;
      this.#deps.metrics.filteredItems.labels(this.#route).inc(checked.dropped);
    }
    const changed = checked.body !== original;
    this.#res.writeHead(checked.status, responseHeaders(checked.headers, this.#requestId, changed ? checked.body.length : undefined));
    this.#res.end(checked.body);
    this.#finish(checked.status, undefined);
  }

  #fail(err: unknown): void {
    if (this.#finished || this.#failing) return;
    this.#failing = true;
    const failure = toKeygateError(err);
    if (failure.status >= 502) this.#deps.metrics.upstreamErrors.labels(failure.code).inc();
    // A client still uploading on a connection that closes after this answer gets it once
    // its body is in (see mustDiscardBefore); every other refusal goes out at once.
    if (!this.#res.headersSent && mustDiscardBefore(this.#req, !this.#res.shouldKeepAlive)) {
      discardBody(this.#req, () => this.#refuse(failure));
      return;
    }
    this.#refuse(failure);
  }

  #refuse(failure: KeygateError): void {
    try {
      renderError(this.#res, failure, this.#requestId);
    } catch (renderFailure) {
      // A response that cannot even carry an error (socket gone, headers half-written): cut it.
      this.#res.destroy(renderFailure as Error);
    }
    this.#finish(failure.status, failure);
  }

  #finish(status: number, failure: KeygateError | undefined): void {
    if (this.#finished) return;
    this.#finished = true;
    const seconds = (performance.now() - this.#started) / 1000;
    const decision = decisionOf(status, failure);
    const deps = this.#deps;
    deps.metrics.requestFinished(decision, this.#principal?.type ?? 'none', this.#route, status, seconds);
    deps.access.write({
      requestId: this.#requestId,
      method: this.#req.method,
      path: pathOf(this.#req.url),
      route: this.#route,
      keyId: this.#principal?.id,
      keyType: this.#principal?.type,
      decision: DECISIONS[decision],
      status,
      code: failure?.code,
      detail: failure?.detail,
      dropped: this.#dropped === 0 ? undefined : this.#dropped,
      latencyMs: Math.round(seconds * 100_000) / 100,
    });
  }
}

/** The proxy listener's request handler. */
export function createProxyHandler(deps: ProxyDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => new Exchange(deps, req, res).start();
}
