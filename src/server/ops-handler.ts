import type { IncomingMessage, ServerResponse } from 'node:http';
import { KeygateError } from '../errors/keygate-error.ts';
import { renderError } from '../errors/render.ts';
import type { Metrics } from '../observability/metrics.ts';
import { checkReadiness, type ReadinessDeps, type ReadinessReport } from './readiness.ts';
import { nextRequestId } from './request-id.ts';

export interface OpsDeps extends ReadinessDeps {
  readonly metrics: Metrics;
}

/** What the ops endpoints report; one process's own, or (cluster primary) the whole group's. */
export interface OpsSources {
  readiness(): Promise<ReadinessReport>;
  metrics(): Promise<{ readonly contentType: string; readonly text: string }>;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** This process's readiness and metrics. */
export function localOps(deps: OpsDeps): OpsSources {
  return {
    readiness: () => checkReadiness(deps),
    metrics: async () => ({ contentType: deps.metrics.registry.contentType, text: await deps.metrics.registry.metrics() }),
  };
}

/** Ops listener: liveness, readiness (see readiness.ts), Prometheus metrics, answered from `sources`. */
export function createOpsRouter(sources: OpsSources): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      renderError(res, new KeygateError('METHOD_NOT_ALLOWED', { headers: { allow: 'GET, HEAD' } }), nextRequestId());
      return;
    }
    const failed = (err: unknown): void => renderError(res, new KeygateError('INTERNAL_ERROR', { detail: String(err) }), nextRequestId());
    if (path === '/healthz') {
      json(res, 200, { status: 'ok' });
    } else if (path === '/readyz') {
      sources.readiness().then((r) => json(res, r.ready ? 200 : 503, r.body), failed);
    } else if (path === '/metrics') {
      sources.metrics().then(({ contentType, text }) => {
        res.writeHead(200, { 'content-type': contentType });
        res.end(text);
      }, failed);
    } else {
      renderError(res, new KeygateError('NOT_FOUND'), nextRequestId());
    }
  };
}
