import { KeygateError } from '../errors/keygate-error.ts';
import type { Principal } from '../keys/principal.ts';
import type { CompiledPolicy, CompiledResource, CompiledRoute, Enforcement } from '../policy/model.ts';
import type { MaybePromise } from '../util/maybe-promise.ts';
import { authorize, type Condition, type Decision } from './authorize.ts';
import type { Target } from './canonical-path.ts';
import { attributeKeys, buildUpstreamHeaders, mutateQuery, normaliseParamName, paramKey, QUERY_SEPARATORS, type QueryRules } from './mutate.ts';
import { idFromValue, proveByLookup } from './prove.ts';
import type { AttributeSource } from './proving/attributes.ts';
import { foldName } from './proving/fold.ts';
import { idFieldOf, idNames } from './proving/id-names.ts';
import { lookupContext } from './proving/lookup-context.ts';
import { checkJsonBodyHeaders, judgeBody, parseJsonBody } from './proving/request-body.ts';
import { listCheck, ownReadCheck, provenAnswerCheck, type ResponseCheck, responseCheck, responseIdCheck } from './proving/response-checks.ts';

export interface IncomingRequest {
  readonly method: string;
  readonly target: Target;
  readonly rawHeaders: readonly string[];
  readonly remoteAddress: string | undefined;
  /** The connection comes from a proxy trusted with `--trust-proxy`. */
  readonly trustedHop?: boolean | undefined;
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
  const wanted = paramKey(name.toLowerCase());
  let found: string | undefined;
  for (const piece of query.split(QUERY_SEPARATORS)) {
    const eq = piece.indexOf('=');
    if (paramKey(normaliseParamName(eq === -1 ? piece : piece.slice(0, eq))) !== wanted) continue;
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

/** What a plan needs besides the request: the path (query rewritten), the headers, the body, how to check the answer. */
interface Draft {
  readonly decision: Decision;
  readonly path: string;
  readonly headers: string[];
  body: Plan['body'];
  check: ResponseCheck | null;
}

/** Methods whose requests carry no body a backend should read; for a judged key, one is refused. */
const BODILESS = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS']);

/** For a key that is not full access on a route without conditions: only ASCII names (`_ｍｅｔｈｏｄ` is `_method` to an NFKC backend). */
const ASCII_NAMES: QueryRules = Object.freeze({ asciiOnly: true });

/** judgedNames per frozen condition list (authorize.ts shares them per key and role) and resource. */
const JUDGED_NAMES = new WeakMap<readonly Condition[], Map<CompiledResource, ReadonlySet<string>>>();

/**
 * The names a header or a cookie may not have on a route with conditions (UpstreamHeaderInput
 * .judgedNames): every attribute the key's conditions name (`referenceId`), and every name
 * of the id of the resource the route proves or lists (`id`, `deviceId`, the policy's own).
 */
function judgedNames(policy: CompiledPolicy, route: CompiledRoute, conditions: readonly Condition[]): ReadonlySet<string> {
  const e = route.enforcement;
  const resource = e.kind === 'lookup' ? e.resource : route.resource;
  let byResource = JUDGED_NAMES.get(conditions);
  if (byResource === undefined) JUDGED_NAMES.set(conditions, (byResource = new Map()));
  let names = byResource.get(resource);
  if (names === undefined) {
    const all = new Set(idNames(policy, resource));
    for (const c of conditions) all.add(paramKey(c.attribute.toLowerCase()));
    byResource.set(resource, (names = all));
  }
  return names;
}

/** The query rules of a route with conditions, built once per compiled route. */
const QUERY_RULES = new WeakMap<CompiledRoute, QueryRules>();

function queryRules(policy: CompiledPolicy, route: CompiledRoute): QueryRules {
  let rules = QUERY_RULES.get(route);
  if (rules === undefined) {
    const e = route.enforcement;
    const id = e.kind === 'lookup' ? e.id : null;
    // A body id must be the only id: a backend that also reads `?deviceId=` must not find
    // another one. A path id must not be named again under any name the backend may read
    // it by: Laravel's `$request->deviceId` prefers input to the route parameter.
    const names = e.kind === 'lookup' ? idNames(policy, e.resource) : undefined;
    rules = Object.freeze({
      asciiOnly: true,
      drop: id?.from === 'body' ? names : undefined,
      refuse: id?.from === 'path' ? names : undefined,
    });
    QUERY_RULES.set(route, rules);
  }
  return rules;
}

/** How the answer is checked, or null when it is released as it comes. */
function checkOf(ctx: PlanContext, route: CompiledRoute, conditions: readonly Condition[], principal: Principal, requestId: string, path: string, headers: readonly string[]): ResponseCheck | null {
  const e = route.enforcement;
  if (e.kind === 'filter') return listCheck(route.resource, conditions);
  if (e.kind === 'response') return responseCheck(route.resource, conditions);
  if (e.kind !== 'lookup') return null;
  if (e.id.from === 'response') return responseIdCheck(ctx.attributes, e.resource, e.id, conditions, principal, requestId, lookupContext(path, headers));
  // The read of the looked-up resource itself is checked again on the answer, so a
  // backend that answers differently (or a resource that moved within the lookup TTL)
  // still cannot show another user's object.
  if (ownRead(route, e)) return responseCheck(route.resource, conditions);
  // Any other route proven by a lookup has its answer checked once the id is known (proveThenComplete).
  return null;
}

/** Whether checkOf gives the route a check (known before the headers are built: they depend on it). */
function checks(route: CompiledRoute): boolean {
  const e = route.enforcement;
  return e.kind === 'filter' || e.kind === 'response' || (e.kind === 'lookup' && (e.id.from === 'response' || ownRead(route, e)));
}

/** The route is the looked-up resource's own read (`GET /v1/devices/{id}` of `lookup: GET /v1/devices/{id}`). */
function ownRead(route: CompiledRoute, e: LookupEnforcement): boolean {
  return e.resource === route.resource && e.resource.lookup?.template.text === route.template.text;
}

/** A lookup route whose answer is checked against the id the request proved (provenAnswerCheck). */
function provesAnswer(route: CompiledRoute | null, e: Enforcement | null): e is LookupEnforcement {
  return route !== null && e !== null && e.kind === 'lookup' && e.id.from !== 'response' && !ownRead(route, e);
}

/**
 * A key that may do everything (an unconditioned `*` role: server and operator keys) is
 * not judged on its body; every other key's body is read and judged before anything is
 * forwarded (invariant 9: no body field the policy did not see may change what the
 * backend does).
 */
function fullAccess(policy: CompiledPolicy, decision: Decision): boolean {
  return decision.conditions === null && policy.roles.get(decision.role)?.all === true;
}

/**
 * authorize → mutate → (prove) : everything Keygate decides about one request, without
 * touching the network except for attribute lookups. `keygate serve` executes the plan;
 * `keygate policy test` compares it with what a test file expects. Synchronous unless a
 * body must be read or an attribute lookup misses the cache: the warm path allocates no
 * promise.
 */
export function plan(ctx: PlanContext, principal: Principal, req: IncomingRequest, decision: Decision = authorize(ctx.policy, principal, req.method, req.target)): MaybePromise<Plan> {
  const conditions = decision.conditions;
  const route = decision.route;
  const conditioned = conditions !== null && route !== null;
  const e = conditioned ? route.enforcement : null;
  const judged = !fullAccess(ctx.policy, decision);
  const query = conditioned
    ? mutateQuery(req.target.query, e!.kind === 'filter' ? conditions : null, queryRules(ctx.policy, route))
    : mutateQuery(req.target.query, null, judged ? ASCII_NAMES : undefined);
  const up = buildUpstreamHeaders({
    rawHeaders: req.rawHeaders,
    principal,
    requestId: req.requestId,
    remoteAddress: req.remoteAddress,
    trustedHop: req.trustedHop,
    readsBody: judged,
    checked: conditioned && (checks(route) || provesAnswer(route, e)),
    judgedNames: conditioned ? judgedNames(ctx.policy, route, conditions) : undefined,
    judgedAttributes: conditioned ? attributeKeys(conditions) : undefined,
  });
  const path = query === '' ? req.target.path : req.target.path + '?' + query;
  const check = conditioned ? checkOf(ctx, route, conditions, principal, req.requestId, path, up.headers) : null;
  const draft: Draft = { decision, path, headers: up.headers, body: null, check };
  const lookup = e?.kind === 'lookup' ? e : null;
  const bodyId = lookup?.id.from === 'body';
  if (!judged) {
    if (up.hasBody) draft.body = 'stream';
    return complete(draft, req);
  }
  if (!up.hasBody && !bodyId) return proveThenComplete(ctx, draft, lookup, principal, req, undefined);
  // A GET body can carry its own `referenceId` or `id`, read by backends that merge body and query.
  if (up.hasBody && BODILESS.has(req.method)) throw new KeygateError('BODY_NOT_ALLOWED', { detail: `${req.method} with a body` });
  checkJsonBodyHeaders(up.contentType, up.contentEncoding, up.contentLength, req.maxBodyBytes);
  // The id's other names may not appear beside the one it is proven from (path, query or a body field).
  const idKeys = lookup !== null && lookup.id.from !== 'response' ? idNames(ctx.policy, lookup.resource) : undefined;
  const provenField = lookup?.id.from === 'body' ? lookup.id.name : undefined;
  const filterKeys = e?.kind === 'filter' ? new Set(conditions!.map((c) => foldName(c.attribute))) : undefined;
  return req.readBody(req.maxBodyBytes).then((body) => {
    draft.body = body;
    draft.headers.push('content-length', String(body.length));
    const json = parseJsonBody(body);
    judgeBody(json, { idKeys, provenField, filterKeys });
    return proveThenComplete(ctx, draft, lookup, principal, req, json);
  });
}

/** A lookup route: find its id, prove ownership, then finish the plan. */
function proveThenComplete(ctx: PlanContext, draft: Draft, e: LookupEnforcement | null, principal: Principal, req: IncomingRequest, json: unknown): MaybePromise<Plan> {
  if (e === null || e.id.from === 'response') return complete(draft, req);
  let id: string;
  if (e.id.from === 'body') {
    if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new KeygateError('MISSING_RESOURCE_ID', { detail: 'body is not a JSON object' });
    id = idFromValue((json as Record<string, unknown>)[e.id.name], e.id);
  } else if (e.id.from === 'path') id = idFromValue(draft.decision.params[e.id.name], e.id);
  else id = idFromQuery(req.target.query, e.id.name);
  const conditions = draft.decision.conditions!;
  const route = draft.decision.route;
  if (route !== null && provesAnswer(route, e)) draft.check = provenAnswerCheck(e.resource, conditions, idFieldOf(e.resource, e.id.name), id);
  else if (route !== null && ownRead(route, e)) draft.check = ownReadCheck(e.resource, conditions, idFieldOf(e.resource, e.id.name), id);
  const proven = proveByLookup(ctx.attributes, e.resource, id, conditions, principal, req.requestId, lookupContext(draft.path, draft.headers));
  return proven instanceof Promise ? proven.then(() => complete(draft, req)) : complete(draft, req);
}

function complete(draft: Draft, req: IncomingRequest): Plan {
  // HEAD on a checked route: fetch with GET so there is a body to check; Node drops it for HEAD.
  const method = draft.check !== null && req.method === 'HEAD' ? 'GET' : req.method;
  return { decision: draft.decision, method, path: draft.path, headers: draft.headers, body: draft.body, check: draft.check };
}
