import type { IncomingMessage, ServerResponse } from 'node:http';
import { KeygateError } from '../errors/keygate-error.ts';
import { renderError } from '../errors/render.ts';
import type { KeyStore } from '../keys/store.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { PolicyHolder } from '../policy/policy-holder.ts';
import { nextRequestId } from './request-id.ts';

export interface OpsDeps {
  readonly policy: PolicyHolder;
  readonly store: KeyStore;
  readonly metrics: Metrics;
  readonly isDraining: () => boolean;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** Ops listener: liveness, readiness (policy loaded and store reachable), Prometheus metrics. */
export function createOpsHandler(deps: OpsDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      renderError(res, new KeygateError('METHOD_NOT_ALLOWED', { headers: { allow: 'GET, HEAD' } }), nextRequestId());
      return;
    }
    if (path === '/healthz') {
      json(res, 200, { status: 'ok' });
    } else if (path === '/readyz') {
      const policy = deps.policy.current;
      const reload = deps.policy.lastReload;
      deps.store.ping().then(
        () => ({ ok: true as const }),
        (err: unknown) => ({ ok: false as const, error: err instanceof Error ? err.message : String(err) }),
      ).then((store) => {
        const ready = store.ok && !deps.isDraining();
        json(res, ready ? 200 : 503, {
          status: ready ? 'ready' : 'not ready',
          draining: deps.isDraining(),
          policy: { version: policy.version, loadedAt: policy.loadedAt, files: policy.files, lastReload: reload },
          store: { kind: deps.store.kind, ...store },
        });
      });
    } else if (path === '/metrics') {
      deps.metrics.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': deps.metrics.registry.contentType });
        res.end(text);
      }, (err: unknown) => renderError(res, new KeygateError('INTERNAL_ERROR', { detail: String(err) }), nextRequestId()));
    } else {
      renderError(res, new KeygateError('NOT_FOUND'), nextRequestId());
    }
  };
}
