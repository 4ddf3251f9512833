import type { IncomingMessage, ServerResponse } from 'node:http';
import { KeygateError } from '../errors/keygate-error.ts';
import type { Principal } from '../keys/principal.ts';
import type { Decision } from '../pipeline/authorize.ts';
import type { Target } from '../pipeline/canonical-path.ts';
import { checkJsonBodyHeaders, parseJsonBody } from '../pipeline/proving/request-body.ts';
import type { ServedAnswer, ServedHandler } from '../pipeline/served-handler.ts';
import type { CompiledPolicy, CompiledRoute } from '../policy/model.ts';

/** Handler name (src/policy/served.ts) -> handler; built once by served-routes.ts. */
export type ServedRegistry = ReadonlyMap<string, ServedHandler>;

/** What the exchange lends a served route: its bounded body reader and its two ways to end. */
export interface ServedSink {
  readBody(maxBytes: number): Promise<Buffer>;
  answer(answer: ServedAnswer): void;
  fail(err: unknown): void;
}

export interface ServedCall {
  readonly req: IncomingMessage;
  readonly principal: Principal;
  readonly decision: Decision;
  readonly route: CompiledRoute;
  readonly policy: CompiledPolicy;
  readonly target: Target;
  readonly requestId: string;
  readonly maxBodyBytes: number;
}

/** Framing headers a body Keygate reads must carry once (as for bodies the policy reads). */
const ONCE = ['content-type', 'content-encoding', 'content-length'];

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return Number(length) > 0;
  return req.headers['transfer-encoding'] !== undefined;
}

function checkFraming(req: IncomingMessage): void {
  const seen = new Set<string>();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase();
    if (!ONCE.includes(name)) continue;
    if (seen.has(name)) throw new KeygateError('DUPLICATE_HEADER', { detail: name });
    seen.add(name);
  }
}

/**
 * Runs a served route: the body the handler asks for (bounded, strict JSON), then the
 * handler; its answer or refusal goes back to the exchange. Off the forwarding path: a
 * forwarded request never comes here.
 */
export function dispatchServed(registry: ServedRegistry, call: ServedCall, sink: ServedSink): void {
  const handler = registry.get(call.route.serve!);
  if (handler === undefined) {
    sink.fail(new KeygateError('INTERNAL_ERROR', { detail: `no handler registered for serve: ${call.route.serve}` }));
    return;
  }
  const run = (body: unknown): void => {
    try {
      const answer = handler.handle({
        req: call.req,
        principal: call.principal,
        decision: call.decision,
        route: call.route,
        policy: call.policy,
        target: call.target,
        requestId: call.requestId,
        body,
      });
      if (answer instanceof Promise)
        answer.then(
          (a) => sink.answer(a),
          (err: unknown) => sink.fail(err),
        );
      else sink.answer(answer);
    } catch (err) {
      sink.fail(err);
    }
  };
  try {
    const req = call.req;
    if (!hasBody(req)) {
      if (handler.body === 'json') throw new KeygateError('INVALID_FIELD', { message: 'the request needs a JSON object body', detail: 'no body' });
      run(undefined);
      return;
    }
    if (handler.body === 'none') throw new KeygateError('BODY_NOT_ALLOWED', { detail: `${req.method} ${call.route.template.text} with a body` });
    checkFraming(req);
    checkJsonBodyHeaders(req.headers['content-type'], req.headers['content-encoding'], req.headers['content-length'], call.maxBodyBytes);
    sink.readBody(call.maxBodyBytes).then(
      (bytes) => {
        let json: unknown;
        try {
          json = bytes.length === 0 && handler.body === 'optional' ? undefined : parseJsonBody(bytes);
        } catch (err) {
          sink.fail(err);
          return;
        }
        run(json);
      },
      (err: unknown) => sink.fail(err),
    );
  } catch (err) {
    sink.fail(err);
  }
}

/** Writes a served answer: JSON, never cached (a created key's secret is in one), with the request id. */
export function writeServedAnswer(res: ServerResponse, answer: ServedAnswer, requestId: string): void {
  const body = answer.body === undefined ? '' : JSON.stringify(answer.body);
  const headers: Record<string, string | number> = {
    ...(body === '' ? {} : { 'content-type': 'application/json; charset=utf-8' }),
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-request-id': requestId,
    ...answer.headers,
  };
  res.writeHead(answer.status, headers);
  res.end(body);
}
