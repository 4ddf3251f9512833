import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { KeygateError } from '../errors/keygate-error.ts';
import { renderError } from '../errors/render.ts';
import type { KeyCache } from '../keys/key-cache.ts';
import type { Principal } from '../keys/principal.ts';
import type { AccessLog } from '../observability/access-log.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { PolicyHolder } from '../policy/policy-holder.ts';
import type { AttributeSource } from '../pipeline/attributes.ts';
import { authenticate, KEY_HEADER } from '../pipeline/authenticate.ts';
import { authorize, isKnownMethod } from '../pipeline/authorize.ts';
import { canonicalize, type Target } from '../pipeline/canonical-path.ts';
import type { CompiledPolicy } from '../policy/model.ts';
import { bufferedRequest, streamForward, type BufferedResponse } from '../pipeline/forward.ts';
import { responseHeaders } from '../pipeline/mutate.ts';
import { plan, type Plan } from '../pipeline/plan.ts';
import { readBody } from '../pipeline/request-body.ts';
import { nextRequestId } from './request-id.ts';

export interface ProxyDeps {
  readonly policy: PolicyHolder;
  readonly keys: KeyCache;
  readonly upstream: Dispatcher;
  readonly attributes: AttributeSource;
  readonly access: AccessLog;
  readonly metrics: Metrics;
  readonly maxBodyBytes: number;
}

function decisionOf(status: number, err: KeygateError | undefined): string {
  if (err === undefined) return 'allow';
  if (status === 401) return 'unauthenticated';
  if (status === 403) return 'forbidden';
  if (status < 500) return 'invalid';
  return 'error';
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

function writeChecked(res: ServerResponse, r: BufferedResponse, original: Buffer, requestId: string): number {
  const changed = r.body !== original;
  res.writeHead(r.status, responseHeaders(r.headers, requestId, changed ? r.body.length : undefined));
  res.end(r.body);
  return r.status;
}

async function execute(deps: ProxyDeps, p: Plan, req: IncomingMessage, res: ServerResponse, requestId: string): Promise<number> {
  const body = p.body === 'stream' ? req : p.body;
  const upstreamRequest = { method: p.method, path: p.path, headers: p.headers, body };
  if (p.check === null) return streamForward(deps.upstream, upstreamRequest, res, requestId);
  const answer = await bufferedRequest(deps.upstream, upstreamRequest);
  const checked = await p.check(answer);
  if (checked.headers['x-keygate-filtered'] !== undefined) deps.metrics.filteredItems.labels(p.decision.route?.template.text ?? '-').inc(Number(checked.headers['x-keygate-filtered']));
  return writeChecked(res, checked, answer.body, requestId);
}

/**
 * The proxy listener's request handler: authenticate → canonicalize → authorize/mutate
 * (plan) → forward, then one access line and the metrics. Every failure becomes a
 * KeygateError and goes through the single renderer.
 */
export function createProxyHandler(deps: ProxyDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const maxBodyBytes = deps.maxBodyBytes;
  const readRequestBody = (req: IncomingMessage) => (max: number) => readBody(req, max);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const requestId = nextRequestId();
    deps.metrics.inflight.inc();
    let principal: Principal | undefined;
    let route = '-';
    let status = 0;
    let failure: KeygateError | undefined;
    try {
      const auth = authenticate(req.headers[KEY_HEADER], deps.keys);
      principal = auth instanceof Promise ? await auth : auth;
      const target = canonicalize(req.url ?? '');
      const policy = deps.policy.current;
      const method = req.method ?? 'GET';
      let decision;
      try {
        decision = authorize(policy, principal, method, target);
      } catch (err) {
        route = routeLabel(policy, method, target);
        throw err;
      }
      route = decision.route?.template.text ?? 'undeclared';
      const p = await plan({ policy, attributes: deps.attributes }, principal, {
        method,
        target,
        rawHeaders: req.rawHeaders,
        headers: req.headers,
        remoteAddress: req.socket.remoteAddress,
        requestId,
        readBody: readRequestBody(req),
        maxBodyBytes,
      }, decision);
      status = await execute(deps, p, req, res, requestId);
    } catch (err) {
      failure = toKeygateError(err);
      status = failure.status;
      if (status >= 502) deps.metrics.upstreamErrors.labels(failure.code).inc();
      renderError(res, failure, requestId);
    }
    const seconds = (performance.now() - started) / 1000;
    const decision = decisionOf(status, failure);
    deps.metrics.inflight.dec();
    deps.metrics.countRequest(decision, principal?.type ?? 'none', route, status);
    deps.metrics.observeLatency(decision, seconds);
    deps.access.write({
      requestId,
      method: req.method,
      path: pathOf(req.url),
      route,
      keyId: principal?.id,
      keyType: principal?.type,
      decision,
      status,
      code: failure?.code,
      detail: failure?.detail,
      latencyMs: Math.round(seconds * 100_000) / 100,
    });
  }

  return (req, res) => {
    void handle(req, res);
  };
}
