import type { IncomingMessage } from 'node:http';
import { KeygateError } from '../errors/keygate-error.ts';
import type { Principal } from '../keys/principal.ts';
import type { CompiledPolicy } from '../policy/model.ts';
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

/**
 * authorize → mutate → (prove) : everything Keygate decides about one request, without
 * touching the network except for attribute lookups. `keygate serve` executes the plan;
 * `keygate policy test` compares it with what a test file expects.
 */
export async function plan(ctx: PlanContext, principal: Principal, req: IncomingRequest, decision: Decision = authorize(ctx.policy, principal, req.method, req.target)): Promise<Plan> {
  const conditions = decision.conditions;
  const route = decision.route;
  const e = conditions === null || route === null ? null : route.enforcement;
  // A body id must be the only id: a backend that also reads `?deviceId=` must not find another one.
  const query = mutateQuery(req.target.query, e?.kind === 'filter' ? conditions : null, e?.kind === 'lookup' && e.id.from === 'body' ? e.id.name : undefined);
  const path = query === '' ? req.target.path : req.target.path + '?' + query;
  let body: Plan['body'] = 'stream';
  let check: ResponseCheck | null = null;

  if (e !== null && conditions !== null && route !== null) {
    if (e.kind === 'filter') check = listCheck(route.resource, conditions);
    else if (e.kind === 'response') check = responseCheck(route.resource, conditions);
    else if (e.kind === 'lookup') {
      let id: string | undefined;
      if (e.id.from === 'path') id = idFromValue(decision.params[e.id.name], e.id);
      else if (e.id.from === 'query') id = idFromQuery(req.target.query, e.id.name);
      else if (e.id.from === 'body') {
        checkJsonBodyHeaders(req.headers['content-type'], req.headers['content-encoding'], req.headers['content-length'], req.maxBodyBytes);
        body = await req.readBody(req.maxBodyBytes);
        const json = parseJsonBody(body);
        if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new KeygateError('MISSING_RESOURCE_ID', { detail: 'body is not a JSON object' });
        id = idFromValue((json as Record<string, unknown>)[e.id.name], e.id);
      }
      if (id === undefined) check = responseIdCheck(ctx.attributes, e.resource, e.id, conditions, principal, req.requestId);
      else {
        await proveByLookup(ctx.attributes, e.resource, id, conditions, principal, req.requestId);
        // The read of the looked-up resource itself is checked again on the answer, so a
        // backend that answers differently (or a resource that moved within the lookup
        // TTL) still cannot show another user's object.
        if (e.resource === route.resource && e.resource.lookup?.template.text === route.template.text) check = responseCheck(route.resource, conditions);
      }
    }
  }

  const { headers, hasBody } = buildUpstreamHeaders({
    rawHeaders: req.rawHeaders,
    principal,
    requestId: req.requestId,
    remoteAddress: req.remoteAddress,
    ...(Buffer.isBuffer(body) ? { bodyLength: body.length } : {}),
  });
  if (body === 'stream' && !hasBody) body = null;
  // HEAD on a checked route: fetch with GET so there is a body to check; Node drops it for HEAD.
  const method = check !== null && req.method === 'HEAD' ? 'GET' : req.method;
  return { decision, method, path, headers, body, check };
}
