import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { maskLinkTokens } from '../connect/link-token.ts';
import type { PublicRoutes } from '../connect/public-routes.ts';
import type { BrowserGuard } from '../cors/browser-guard.ts';
import { answerWithCors } from '../cors/cors-headers.ts';
import { answerPreflight, isPreflight } from '../cors/preflight.ts';
import { KeygateError } from '../errors/keygate-error.ts';
import { renderError } from '../errors/render.ts';
import type { KeyCache } from '../keys/key-cache.ts';
import { askerOf, type Principal } from '../keys/principal.ts';
import type { RateLimiter, RateLimitOutcome } from '../limits/rate-limiter.ts';
import type { AccessLog } from '../observability/access-log.ts';
import { DECISIONS, decisionOf, type Metrics } from '../observability/metrics.ts';
import { Admission, type AdmissionWaiter, classOf, isPublicClass, type QueueEntry } from '../pipeline/admission.ts';
import { authenticate, KEY_HEADER } from '../pipeline/authenticate.ts';
import { type Decision, decide, isKnownMethod } from '../pipeline/authorize.ts';
import { canonicalize, type Target } from '../pipeline/canonical-path.ts';
import { type BufferedResponse, type BufferSink, bufferedDispatch, CLIENT_CLOSED, type StreamSink, streamForward, type UpstreamRequest } from '../pipeline/forward.ts';
import type { AnswerBudget } from '../pipeline/forwarding/answer-budget.ts';
import type { TrustedHops } from '../pipeline/forwarding/trusted-hops.ts';
import { responseHeaders } from '../pipeline/mutate.ts';
import { type Plan, plan } from '../pipeline/plan.ts';
import type { AttributeSource } from '../pipeline/proving/attributes.ts';
import { MAX_PARTS } from '../pipeline/proving/parts.ts';
import { discardBody, mustDiscardBefore, readBody } from '../pipeline/proving/request-body.ts';
import type { CheckedResponse } from '../pipeline/proving/response-checks.ts';
import type { Upload } from '../pipeline/upload-budget.ts';
import type { CompiledPolicy } from '../policy/model.ts';
import type { PolicyHolder } from '../policy/policy-holder.ts';
import type { HeldAnswers } from './held-answers.ts';
import { nextRequestId } from './request-id.ts';
import { dispatchServed, type ServedCall, type ServedRegistry, writeServedAnswer } from './served-dispatch.ts';
import { shownError } from './shown-error.ts';

export interface ProxyDeps {
  readonly policy: PolicyHolder;
  readonly keys: KeyCache;
  readonly upstream: Dispatcher;
  readonly attributes: AttributeSource;
  readonly access: AccessLog;
  readonly metrics: Metrics;
  readonly maxBodyBytes: number;
  /** `--max-upstream-body`: the largest backend answer held to be checked. */
  readonly maxUpstreamBodyBytes: number;
  /** Checked answers written whole that their clients have not taken (the stall and byte bounds). */
  readonly held: HeldAnswers;
  /** `--checked-answer-budget`: the checked answers held at once, from their first byte until their client has them. */
  readonly checked: AnswerBudget;
  /** Total time, from the request's headers, that a body Keygate reads before dispatch may take. */
  readonly bodyTimeoutMs: number;
  readonly admission: Admission;
  /** Read on every request: once draining, every answer closes its connection. */
  readonly listener: { readonly draining: boolean };
  /** `--trust-proxy`: null when no hop is trusted. */
  readonly trustedHops?: TrustedHops | null;
  /** CORS and the secret-key check for requests from browsers; null: no browser handling. */
  readonly browser?: BrowserGuard | null;
  /** Keygate's own pages under `/connect/` (hosted Connect pages, the SDK), answered without a key. */
  readonly publicRoutes?: PublicRoutes | null;
  /** The handlers of routes Keygate serves itself (`serve:` in the policy); see served-routes.ts. */
  readonly served?: ServedRegistry;
  /** The policy's `rateLimits:` (src/limits/); null or absent: none are applied. */
  readonly rateLimiter?: RateLimiter | null;
}

const NO_SERVED: ServedRegistry = new Map();

/** The route template for metrics and logs, also for refused requests (error path only). */
function routeLabel(policy: CompiledPolicy, method: string, target: Target): string {
  return isKnownMethod(method) ? (policy.matcher.match(method, target.segments)?.value.template.text ?? 'unmatched') : 'unmatched';
}

/** The path without the query (the query may carry filters worth keeping out of logs). */
function pathOf(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const q = url.indexOf('?');
  return maskLinkTokens(q === -1 ? url : url.slice(0, q));
}

const CLIENT_GONE_WHILE_QUEUED = Object.freeze(new KeygateError('UPSTREAM_SATURATED', { detail: 'client closed the connection while waiting for a backend connection' }));

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
 *
 * A backend connection is taken (admission, per key type) only once the request is ready
 * to go: for public keys and keys with conditions that is after their whole body has been
 * read, so a client that declares a body and stalls holds nothing but its own socket.
 */
class Exchange implements StreamSink, BufferSink, AdmissionWaiter, Upload {
  readonly #deps: ProxyDeps;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #started = performance.now();
  readonly #requestId = nextRequestId();
  #principal: Principal | undefined = undefined;
  /** Who the request is made for (askerOf): what a key type's share bounds per party. */
  #asker: string | undefined = undefined;
  #route = '-';
  #plan: Plan | null = null;
  #finished = false;
  /** A failure is being answered (perhaps after discarding the rest of the body). */
  #failing = false;
  /** The admission class holding a backend connection for this request, or -1. */
  #slot = -1;
  /** Bytes of body memory reserved for this request (released when it ends). */
  #bodyBytes = 0;
  #queued: QueueEntry | null = null;
  // Upload: kept by the key type's upload budget while the body memory is reserved (upload-budget.ts).
  uploadParty: string | undefined = undefined;
  uploadBytes = 0;
  uploadOlder: Upload | null = null;
  uploadNewer: Upload | null = null;
  uploadPartyBytes = 0;
  #onQueuedClose: (() => void) | null = null;
  #request: UpstreamRequest | null = null;
  /** List items dropped from the answer (access line). */
  #dropped = 0;
  /** The backend failure that cut a streamed answer after its status line (access line). */
  #cut: KeygateError | null = null;
  /** The answer carries CORS headers for the request's Origin. */
  #cors = false;
  /** Header pairs the answer carries besides the backend's (the RateLimit fields), or null. */
  #added: readonly string[] | null = null;
  /** What the access line shows as the path when the real one holds a secret (a link token). */
  #loggedPath: string | undefined = undefined;

  constructor(deps: ProxyDeps, req: IncomingMessage, res: ServerResponse) {
    this.#deps = deps;
    this.#req = req;
    this.#res = res;
  }

  start(): void {
    this.#deps.metrics.inFlight++;
    // A connection's first request clears its first-byte deadline (later ones find it
    // cleared by Node's keep-alive handling): past the headers, the request's own bounds apply.
    const socket = this.#req.socket;
    if (socket.timeout) socket.setTimeout(0);
    if (this.#deps.listener.draining) this.#res.shouldKeepAlive = false;
    try {
      const header = this.#req.headers[KEY_HEADER];
      // Keygate's own unauthenticated answers (preflights, /connect/ pages): only requests
      // without a key, or for a /connect/ page, pay for the check. A page is public with a
      // key too (an app's fetch wrapper that adds its key to every call, the SDK's script):
      // the key is not looked at there.
      if ((header === undefined || this.#deps.publicRoutes?.owns(this.#req.url ?? '') === true) && this.#answeredWithoutKey()) return;
      const auth = authenticate(header, this.#deps.keys, this.#req.socket);
      if (auth instanceof Promise)
        auth.then(
          (p) => this.#authenticated(p),
          (err: unknown) => this.#fail(err),
        );
      else this.#authenticated(auth);
    } catch (err) {
      this.#fail(err);
    }
  }

  /** A preflight or a page of Keygate's own: answered here, never forwarded. */
  #answeredWithoutKey(): boolean {
    const req = this.#req;
    const browser = this.#deps.browser;
    if (browser != null && isPreflight(req)) {
      this.#route = 'preflight';
      const refused = answerPreflight(req, this.#res, browser.known, this.#requestId);
      if (refused === null) this.#finish(204, undefined);
      else this.#fail(refused);
      return true;
    }
    const pages = this.#deps.publicRoutes;
    const url = req.url ?? '';
    if (pages == null || !pages.owns(url)) return false;
    const route = pages.route(req.method ?? 'GET', url);
    this.#route = route;
    this.#loggedPath = route.slice(route.indexOf(' ') + 1);
    pages.answer(req, this.#res, route, this.#requestId).then(
      (a) => this.#finish(a.status, a.failure),
      (err: unknown) => this.#fail(err),
    );
    return true;
  }

  #authenticated(principal: Principal | KeygateError): void {
    if (principal instanceof KeygateError) {
      this.#fail(principal);
      return;
    }
    this.#principal = principal;
    this.#asker = askerOf(principal);
    const browser = this.#deps.browser;
    if (browser != null) {
      const origin = this.#req.headers.origin;
      const refused = browser.check(principal, this.#req.headers, origin);
      if (refused !== null) {
        this.#fail(refused);
        return;
      }
      if (origin !== undefined) {
        answerWithCors(this.#res, origin);
        this.#cors = true;
      }
    }
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
      const limiter = this.#deps.rateLimiter;
      if (limiter != null && policy.rateLimits.any) {
        this.#route = decision.route?.template.text ?? 'undeclared';
        const limited = limiter.check(policy.rateLimits, principal, decision.route?.permission ?? null, req);
        if (limited instanceof Promise) {
          limited.then(
            (outcome) => this.#limited(outcome, principal, policy, method, target, decision),
            (err: unknown) => this.#fail(err),
          );
          return;
        }
        this.#limited(limited, principal, policy, method, target, decision);
        return;
      }
      this.#authorized(principal, policy, method, target, decision);
    } catch (err) {
      this.#fail(err);
    }
  }

  #limited(outcome: RateLimitOutcome, principal: Principal, policy: CompiledPolicy, method: string, target: Target, decision: Decision): void {
    if (outcome instanceof KeygateError) {
      this.#fail(outcome);
      return;
    }
    if (outcome.length > 0) this.#added = outcome;
    this.#authorized(principal, policy, method, target, decision);
  }

  /** Past authorization and the rate limits: a served route leaves here, a forwarded one is planned. */
  #authorized(principal: Principal, policy: CompiledPolicy, method: string, target: Target, decision: Decision): void {
    try {
      const req = this.#req;
      const route = decision.route;
      if (route === null) this.#route = 'undeclared';
      else {
        this.#route = route.template.text;
        // A route Keygate answers itself (management API, Connect flow) leaves the forwarding path here.
        if (route.serve !== null) {
          // A served answer is written with headers of its own handler's: the fields go on the response first.
          this.#setAddedHeaders();
          this.#serve({ req, principal, decision, route, policy, target, requestId: this.#requestId, maxBodyBytes: this.#deps.maxBodyBytes });
          return;
        }
      }
      const planned = plan(
        { policy, attributes: this.#deps.attributes },
        principal,
        {
          method,
          target,
          rawHeaders: req.rawHeaders,
          remoteAddress: req.socket.remoteAddress,
          trustedHop: this.#deps.trustedHops?.has(req.socket.remoteAddress) === true,
          requestId: this.#requestId,
          readBody: (max) => this.#readBody(max),
          maxBodyBytes: this.#deps.maxBodyBytes,
        },
        decision,
      );
      if (planned instanceof Promise)
        planned.then(
          (p) => this.#execute(p),
          (err: unknown) => this.#fail(err),
        );
      else this.#execute(planned);
    } catch (err) {
      this.#fail(err);
    }
  }

  #serve(call: ServedCall): void {
    dispatchServed(this.#deps.served ?? NO_SERVED, call, {
      readBody: (max) => this.#readBody(max),
      answer: (answer) => {
        if (this.#finished || this.#failing) return;
        try {
          writeServedAnswer(this.#res, answer, this.#requestId);
          this.#finish(answer.status, undefined);
        } catch (err) {
          this.#fail(err);
        }
      },
      fail: (err) => this.#fail(err),
    });
  }

  #execute(p: Plan): void {
    try {
      this.#plan = p;
      if (p.body === 'stream' && (isPublicClass(classOf(this.#principal!.type)) || p.decision.conditions !== null)) {
        this.#readBody(this.#deps.maxBodyBytes).then(
          (body) => this.#admit(body),
          (err: unknown) => this.#fail(err),
        );
        return;
      }
      this.#admit(p.body === 'stream' ? this.#req : p.body);
    } catch (err) {
      this.#fail(err);
    }
  }

  /** The body in full, bounded in size, in time (from the request's start) and in the key type's body memory. */
  #readBody(max: number): Promise<Buffer> {
    const declared = this.#req.headers['content-length'];
    const length = declared === undefined ? NaN : Number(declared);
    if (length > max) return Promise.reject(new KeygateError('BODY_TOO_LARGE', { detail: `content-length ${declared} > ${max}` }));
    const bytes = length >= 0 ? length : max;
    if (this.#bodyBytes === 0) {
      if (!this.#deps.admission.reserveBody(classOf(this.#principal!.type), bytes, this, this.#asker!)) return Promise.reject(Admission.BODIES_FULL);
      this.#bodyBytes = bytes;
    }
    return readBody(this.#req, max, this.#started + this.#deps.bodyTimeoutMs - performance.now());
  }

  /** Takes a backend connection of the key type's share, or waits for one in its queue. */
  #admit(body: UpstreamRequest['body']): void {
    const p = this.#plan!;
    this.#request = { method: p.method, path: p.path, headers: p.headers, body };
    const c = classOf(this.#principal!.type);
    const admission = this.#deps.admission;
    // Counted against the key's own bound within its type's share (admission.ts perKeyBound).
    if (admission.tryAcquire(c, this.#asker!)) {
      this.#slot = c;
      this.#dispatch();
      return;
    }
    const queued = admission.enqueue(c, this, this.#asker!);
    if (queued instanceof KeygateError) {
      this.#fail(queued);
      return;
    }
    this.#queued = queued;
    // Only a waiting request pays for this listener (and its closure).
    this.#onQueuedClose = () => {
      if (this.#queued === null) return;
      this.#deps.admission.cancel(this.#queued);
      this.#unqueue();
      this.#fail(CLIENT_GONE_WHILE_QUEUED);
    };
    this.#res.once('close', this.#onQueuedClose);
  }

  #unqueue(): number {
    const c = this.#queued!.c;
    this.#queued = null;
    if (this.#onQueuedClose !== null) this.#res.off('close', this.#onQueuedClose);
    this.#onQueuedClose = null;
    return c;
  }

  // AdmissionWaiter
  admitted(): void {
    this.#slot = this.#unqueue();
    this.#dispatch();
  }

  refused(err: KeygateError): void {
    this.#unqueue();
    this.#fail(err);
  }

  // Upload: its body still arriving, or waiting for a connection, or refused already (not sent on to the backend).
  get uploadCuttable(): boolean {
    return !this.#finished && (this.#failing || this.#queued !== null || !this.#req.complete);
  }

  /** The upload budget released this body's room for a lighter party's: 503, and the connection closes. */
  cutUpload(): void {
    if (this.#queued !== null) {
      this.#deps.admission.cancel(this.#queued);
      this.#unqueue();
    }
    this.#fail(Admission.UPLOAD_CUT);
  }

  #dispatch(): void {
    try {
      if (this.#plan!.check === null) streamForward(this.#deps.upstream, this.#request!, this.#res, this.#requestId, this, this.#added, this.#plan!.decision.conditions !== null);
      else bufferedDispatch(this.#deps.upstream, this.#request!, this, this.#res, this.#deps.maxUpstreamBodyBytes, this.#deps.checked, this.#asker);
    } catch (err) {
      this.#fail(err);
    }
  }

  /** The backend exchange is over (answered, failed or cut): its connection goes back to the pool. */
  #releaseSlot(): void {
    const c = this.#slot;
    if (c === -1) return;
    this.#slot = -1;
    this.#deps.admission.release(c, this.#asker!);
  }

  // StreamSink
  streamed(status: number): void {
    this.#releaseSlot();
    this.#finish(status, undefined);
  }

  streamCut(status: number, err: KeygateError): void {
    this.#releaseSlot();
    this.#deps.metrics.upstreamErrors.labels(err.code).inc();
    this.#cut = err;
    this.#finish(status, undefined);
  }

  streamFailed(err: KeygateError): void {
    this.#releaseSlot();
    this.#fail(err);
  }

  // BufferSink
  answered(answer: BufferedResponse): void {
    this.#releaseSlot();
    try {
      const checked = this.#plan!.check!(answer);
      if (checked instanceof Promise)
        checked.then(
          (c) => this.#release(c, answer),
          (err: unknown) => this.#fail(err),
        );
      else this.#release(checked, answer);
    } catch (err) {
      this.#fail(err);
    }
  }

  bufferFailed(err: KeygateError): void {
    this.#releaseSlot();
    this.#fail(err);
  }

  /** Sends a checked answer: the backend's bytes, or Keygate's re-serialisation when items were dropped. */
  #release(checked: CheckedResponse, answer: BufferedResponse): void {
    // The count of dropped items goes to the metric and the access line, never to the client (invariant 10).
    if (checked.dropped !== undefined && checked.dropped > 0) {
      this.#dropped = checked.dropped;
      this.#deps.metrics.filteredItems.labels(this.#route).inc(checked.dropped);
    }
    const parts = checked.parts;
    if (parts !== undefined && parts.length > 0 && parts.length <= MAX_PARTS) {
      // Held as pieces (proving/parts.ts): written one after another, never joined.
      let length = 0;
      for (const p of parts) length += p.length;
      this.#res.writeHead(checked.status, responseHeaders(checked.headers, this.#requestId, checked === answer ? undefined : length, this.#added));
      this.#res.cork();
      for (let k = 0; k < parts.length - 1; k++) this.#res.write(parts[k]);
      this.#res.end(parts[parts.length - 1]);
    } else {
      // An answer in pieces is not joined to compare: its checked body's length is set anyway.
      const changed = checked !== answer && (answer.parts !== undefined || checked.body !== answer.body);
      this.#res.writeHead(checked.status, responseHeaders(checked.headers, this.#requestId, changed ? checked.body.length : undefined, this.#added));
      this.#res.end(checked.body);
    }
    this.#deps.held.hold(this.#res);
    this.#finish(checked.status, undefined);
  }

  #fail(err: unknown): void {
    if (this.#finished || this.#failing) return;
    this.#failing = true;
    const failure = toKeygateError(err);
    if (failure.status >= 502 && failure !== CLIENT_CLOSED) this.#deps.metrics.upstreamErrors.labels(failure.code).inc();
    if (failure.code === 'BODY_TIMEOUT' || failure === Admission.UPLOAD_CUT) {
      // The rest of the body is not coming (or not wanted): answer now and close, rather than wait to discard it.
      this.#res.shouldKeepAlive = false;
      this.#refuse(failure);
      return;
    }
    // A client still uploading on a connection that closes after this answer gets it once
    // its body is in (see mustDiscardBefore); every other refusal goes out at once.
    if (!this.#res.headersSent && mustDiscardBefore(this.#req, !this.#res.shouldKeepAlive)) {
      discardBody(this.#req, () => this.#refuse(failure));
      return;
    }
    this.#refuse(failure);
  }

  /** The header pairs Keygate adds (the RateLimit fields), set on the response before its own headers are written. */
  #setAddedHeaders(): void {
    const added = this.#added;
    if (added !== null) for (let i = 0; i < added.length; i += 2) this.#res.setHeader(added[i]!, added[i + 1]!);
  }

  #refuse(failure: KeygateError): void {
    // A client that has gone (it closed while queued, or before its answer) is sent nothing:
    // writing to its closed response only builds an error with a stack trace (1.4 µs per
    // request over a 5,000-connection run, where thousands leave the queue at once).
    if (!this.#res.destroyed) {
      try {
        if (!this.#cors) this.#corsOnRefusal();
        // A refusal after the rate limit counted the request (a foreign id, a backend
        // failure) carries the fields, as every answer of a limited key does.
        if (!this.#res.headersSent) this.#setAddedHeaders();
        renderError(this.#res, shownError(failure), this.#requestId);
      } catch (renderFailure) {
        // A response that cannot even carry an error (socket gone, headers half-written): cut it.
        this.#res.destroy(renderFailure as Error);
      }
    }
    this.#finish(failure.status, failure);
  }

  /** A refusal an app may read (so it can show why), when its origin is one Keygate serves browsers at. */
  #corsOnRefusal(): void {
    const origin = this.#req.headers.origin;
    if (origin === undefined || this.#route === 'preflight' || this.#deps.browser?.refusalReadable(origin, this.#principal) !== true) return;
    answerWithCors(this.#res, origin);
    this.#cors = true;
  }

  #finish(status: number, failure: KeygateError | undefined): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#releaseSlot();
    if (this.#bodyBytes !== 0) this.#deps.admission.releaseBody(classOf(this.#principal!.type), this.#bodyBytes, this);
    const seconds = (performance.now() - this.#started) / 1000;
    const decision = decisionOf(status, failure !== undefined);
    const deps = this.#deps;
    deps.metrics.requestFinished(decision, this.#principal?.type ?? 'none', this.#route, status, seconds);
    deps.access.write({
      requestId: this.#requestId,
      method: this.#req.method,
      path: this.#loggedPath ?? pathOf(this.#req.url),
      route: this.#route,
      keyId: this.#principal?.id,
      keyType: this.#principal?.type,
      decision: DECISIONS[decision],
      status,
      code: failure?.code ?? this.#cut?.code,
      detail: failure?.detail ?? (this.#cut === null ? undefined : `cut after the status line: ${this.#cut.detail}`),
      dropped: this.#dropped === 0 ? undefined : this.#dropped,
      latencyMs: Math.round(seconds * 100_000) / 100,
    });
  }
}

/** The proxy listener's request handler. */
/**
 * One exchange at a time per connection. Node parses pipelined requests (HTTP/1.1: several
 * sent before the first answer) at once and queues their answers, in memory, behind the
 * one on the socket; a client that sends forty and reads none would have Keygate fetch
 * and hold forty answers, where only the one on the socket is bounded (the stall timer,
 * `--held-answer-budget`). So a request whose answer would be queued starts only when the
 * socket is handed to it (the answer before it is written out): a client that stops
 * reading holds one answer, and its other requests wait unread, as nginx handles them.
 */
export function createProxyHandler(deps: ProxyDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (res.socket !== null) {
      new Exchange(deps, req, res).start();
      return;
    }
    // Node keeps parsing what the client sent: the waiting requests are bounded here.
    const socket = req.socket;
    const waiting = (WAITING.get(socket) ?? 0) + 1;
    if (waiting > MAX_PIPELINED) {
      socket.destroy();
      return;
    }
    WAITING.set(socket, waiting);
    res.once('socket', () => {
      WAITING.set(socket, (WAITING.get(socket) ?? 1) - 1);
      new Exchange(deps, req, res).start();
    });
  };
}

/** Requests one connection may have waiting behind its answer in progress; one more closes it (no browser or HTTP library pipelines this deep). */
const MAX_PIPELINED = 32;
const WAITING = new WeakMap<object, number>();
