import type { IncomingMessage } from 'node:http';
import { KeygateError } from '../errors/keygate-error.ts';
import type { Principal } from '../keys/principal.ts';
import type { CompiledPolicy, Enforcement } from '../policy/model.ts';
import type { AttributeSource } from './attributes.ts';
import { authorize, type Decision } from './authorize.ts';
import type { Target } from './canonical-path.ts';
import { buildUpstreamHeaders, mutateQuery, normaliseParamName, QUERY_SEPARATORS } from './mutate.ts';
import { idFromValue, proveByLookup } from './prove.ts';
import { checkJsonBodyHeaders, parseJsonBody } from './request-body.ts';
import { listCheck, responseCheck, responseIdCheck, type ResponseCheck } from './response-checks.ts';

export type { ResponseCheck } from './response-checks.ts';

export interface IncomingRequest {
  readonly method: string;
  readonly target: Target;
  readonly rawHeaders: readonly string[];
  readonly headers: IncomingMessage['headers'];
  readonly remoteAddress: string | undefined;
  readonly requestId: string;
  /** Reads the whole body (bounded); only called when the policy must read it. */
  readonly readBody: (maxBytes: number) => Promise<Buffer>;
  readonly maxBodyBytes: number;
}

export interface Plan {
  readonly decision: Decision;
  readonly method: string;
  /** Canonical path and the rewritten query: exactly what the backend will be asked for. */
  readonly path: string;
  readonly headers: string[];
  /** 'stream': pipe the client's body through untouched; a Buffer: the exact bytes Keygate read and checked. */
  readonly body: 'stream' | Buffer | null;
  readonly check: ResponseCheck | null;
}

export interface PlanContext {
  readonly policy: CompiledPolicy;
  readonly attributes: AttributeSource;
}

function idFromQuery(query: string, name: string): string {
  const wanted = name.toLowerCase();
  let found: string | undefined;
  for (const piece of query.split(QUERY_SEPARATORS)) {
    const eq = piece.indexOf('=');
    if (normaliseParamName(eq === -1 ? piece : piece.slice(0, eq)) !== wanted) continue;
    // Two values for the id would let the backend pick another one than Keygate checked.
    if (found !== undefined) throw new KeygateError('MISSING_RESOURCE_ID', { detail: `query.${name} given more than once` });
    try {
      found = decodeURIComponent((eq === -1 ? '' : piece.slice(eq + 1)).replaceAll('+', ' '));
    } catch {
      throw new KeygateError('INVALID_QUERY', { detail: `undecodable value of ${name}` });
    }
  }
  return idFromValue(found, { from: 'query', name });
}

type LookupEnforcement = Extract<Enforcement, { kind: 'lookup' }>;

/** What a plan needs besides the request: the path (query rewritten) and how to check the answer. */
interface Draft {
  readonly decision: Decision;
  readonly path: string;
  body: Plan['body'];
  check: ResponseCheck | null;
}

/**
 * authorize → mutate → (prove) : everything Keygate decides about one request, without
 * touching the network except for attribute lookups. `keygate serve` executes the plan;
 * `keygate policy test` compares it with what a test file expects. Synchronous unless a
 * body must be read or an attribute lookup misses the cache: the warm path allocates no
 * promise.
 */
export function plan(ctx: PlanContext, principal: Principal, req: IncomingRequest, decision: Decision = authorize(ctx.policy, principal, req.method, req.target)): Plan | Promise<Plan> {
  const conditions = decision.conditions;
  const route = decision.route;
  const e = conditions === null || route === null ? null : route.enforcement;
  // A body id must be the only id: a backend that also reads `?deviceId=` must not find another one.
  const query = mutateQuery(req.target.query, e?.kind === 'filter' ? conditions : null, e?.kind === 'lookup' && e.id.from === 'body' ? e.id.name : undefined);
  const draft: Draft = { decision, path: query === '' ? req.target.path : req.target.path + '?' + query, body: 'stream', check: null };
  if (e === null || conditions === null || route === null) return complete(draft, principal, req);
  if (e.kind === 'filter') draft.check = listCheck(route.resource, conditions);
  else if (e.kind === 'response') draft.check = responseCheck(route.resource, conditions);
  else if (e.kind === 'lookup') {
    if (e.id.from === 'body') {
      checkJsonBodyHeaders(req.headers['content-type'], req.headers['content-encoding'], req.headers['content-length'], req.maxBodyBytes);
      return req.readBody(req.maxBodyBytes).then((body) => {
        draft.body = body;
        const json = parseJsonBody(body);
        if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new KeygateError('MISSING_RESOURCE_ID', { detail: 'body is not a JSON object' });
        return proveThenComplete(ctx, draft, e, principal, req, idFromValue((json as Record<string, unknown>)[e.id.name], e.id));
      });
    }
    const id = e.id.from === 'path' ? idFromValue(decision.params[e.id.name], e.id) : e.id.from === 'query' ? idFromQuery(req.target.query, e.id.name) : undefined;
    if (id === undefined) draft.check = responseIdCheck(ctx.attributes, e.resource, e.id, conditions, principal, req.requestId);
    else return proveThenComplete(ctx, draft, e, principal, req, id);
  }
  return complete(draft, principal, req);
}

/** A lookup route with its id in hand: prove ownership first, then finish the plan. */
function proveThenComplete(ctx: PlanContext, draft: Draft, e: LookupEnforcement, principal: Principal, req: IncomingRequest, id: string): Plan | Promise<Plan> {
  const route = draft.decision.route!;
  const conditions = draft.decision.conditions!;
  // The read of the looked-up resource itself is checked again on the answer, so a
  // backend that answers differently (or a resource that moved within the lookup TTL)
  // still cannot show another user's object.
  if (e.resource === route.resource && e.resource.lookup?.template.text === route.template.text) draft.check = responseCheck(route.resource, conditions);
  const proven = proveByLookup(ctx.attributes, e.resource, id, conditions, principal, req.requestId);
  return proven instanceof Promise ? proven.then(() => complete(draft, principal, req)) : complete(draft, principal, req);
}

function complete(draft: Draft, principal: Principal, req: IncomingRequest): Plan {
  let body = draft.body;
  const { headers, hasBody } = buildUpstreamHeaders({
    rawHeaders: req.rawHeaders,
    principal,
    requestId: req.requestId,
    remoteAddress: req.remoteAddress,
    ...(Buffer.isBuffer(body) ? { bodyLength: body.length } : {}),
  });
  if (body === 'stream' && !hasBody) body = null;
  // HEAD on a checked route: fetch with GET so there is a body to check; Node drops it for HEAD.
  const method = draft.check !== null && req.method === 'HEAD' ? 'GET' : req.method;
  return { decision: draft.decision, method, path: draft.path, headers, body, check: draft.check };
}
