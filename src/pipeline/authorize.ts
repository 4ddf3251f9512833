import { KeygateError, sharedRefusal } from '../errors/keygate-error.ts';
import type { Principal } from '../keys/principal.ts';
import { type CompiledPolicy, type CompiledRole, type CompiledRoute, type RoleCondition, roleGrants } from '../policy/model.ts';
import { METHODS, type Method } from '../policy/route-template.ts';
import { PairMemo } from '../util/pair-memo.ts';
import type { Target } from './canonical-path.ts';
import { servedSpaceRefusal } from './served-space.ts';

/** A condition with the key's values filled in: `attribute` must be one of `values`. */
export interface Condition {
  readonly attribute: string;
  readonly values: readonly string[];
}

export interface Decision {
  /** null: an undeclared route reached through an unconditioned `*` grant (pass-through). */
  readonly route: CompiledRoute | null;
  readonly params: Readonly<Record<string, string>>;
  /** null when nothing needs proving. */
  readonly conditions: readonly Condition[] | null;
  readonly role: string;
}

const KNOWN_METHODS: ReadonlySet<string> = new Set(METHODS);
const NO_PARAMS: Readonly<Record<string, string>> = Object.freeze({});

// Shared refusals (see sharedRefusal); the two that name a route are kept per route.
const NO_ROUTE = sharedRefusal('ROUTE_NOT_ALLOWED', 'no rule matches this route');
const NOT_GRANTED = new WeakMap<CompiledRoute, KeygateError>();
const UNPROVABLE = new WeakMap<CompiledRoute, KeygateError>();

function routeRefusal(cache: WeakMap<CompiledRoute, KeygateError>, route: CompiledRoute): KeygateError {
  let err = cache.get(route);
  if (err === undefined) {
    err =
      cache === UNPROVABLE ? sharedRefusal('RESOURCE_NOT_ALLOWED', `conditions cannot be proven on ${route.template.text}`) : sharedRefusal('ACTION_NOT_ALLOWED', `no role grants ${route.permission}`);
    cache.set(route, err);
  }
  return err;
}

export function isKnownMethod(method: string): method is Method {
  return KNOWN_METHODS.has(method);
}

/**
 * The conditions a role puts on a key, kept per (key, role). Both are immutable — a
 * principal is replaced when its cache entry expires, a role when the policy reloads — so
 * the answer is too, and a warm request reuses one frozen list instead of building it:
 * the list's identity then also keys what plan() derives from it (the filter's query
 * text, the response check).
 */
const RESOLVED = new PairMemo<Principal, CompiledRole, readonly Condition[] | null>(() => new WeakMap());

/** resolveConditions frozen, with null for "cannot be resolved" (a memo cannot hold undefined). */
function frozenConditions(principal: Principal, role: CompiledRole): readonly Condition[] | null {
  const resolved = resolveConditions(role, principal);
  return resolved === undefined ? null : Object.freeze(resolved.map((c) => Object.freeze({ attribute: c.attribute, values: Object.freeze([...c.values]) })));
}

function resolveConditions(role: CompiledRole, principal: Principal): Condition[] | undefined {
  const out: Condition[] = [];
  for (const c of role.conditions) {
    const values = resolveValues(c, principal);
    if (values === undefined) return undefined;
    out.push({ attribute: c.attribute, values });
  }
  // Key conditions (EVRYTHNG access tokens) narrow the role's: all-of across attributes,
  // and for an attribute named by both, only values both allow.
  for (const attribute in principal.conditions) {
    const keyValues = principal.conditions[attribute]!;
    const i = out.findIndex((c) => c.attribute === attribute);
    if (i === -1) out.push({ attribute, values: keyValues });
    else out[i] = { attribute, values: out[i]!.values.filter((v) => keyValues.includes(v)) };
  }
  // Conditions that no value meets (a key condition `referenceId: [bob]` under a role bound
  // to the key's own `alice`) reach nothing: the role proves nothing for this key, rather
  // than sending a filter of no value (`?referenceId=`), which a backend may read as none.
  for (const c of out) if (c.values.length === 0) return undefined;
  return out;
}

function resolveValues(c: RoleCondition, principal: Principal): string[] | undefined {
  const values: string[] = [];
  for (const v of c.values) {
    if ('literal' in v) values.push(v.literal);
    else {
      const value = principal[v.keyField];
      // A role that needs {key.referenceId} on a key without one proves nothing: fail closed.
      if (value === null || value === '') return undefined;
      values.push(value);
    }
  }
  return values;
}

/** The role names a key holds: its type's, then its own (access tokens, operator keys). */
export function rolesOf(policy: CompiledPolicy, principal: Principal): string[] {
  const typeRoles = policy.keyTypes.get(principal.type) ?? [];
  return principal.roles.length === 0 ? (typeRoles as string[]) : [...typeRoles, ...principal.roles];
}

/** authorize, throwing the refusal: for callers off the hot path (policy tests, explain). */
export function authorize(policy: CompiledPolicy, principal: Principal, method: string, target: Target): Decision {
  const d = decide(policy, principal, method, target);
  if (d instanceof KeygateError) throw d;
  return d;
}

/**
 * Stage 2: may this key do this? Default deny (invariant 1): no matching route and no
 * unconditioned `*` grant means 403 for every method; the grant's pass-through stops at
 * Keygate's own API (servedSpaceRefusal). Roles are tried in order; the first
 * that grants the route's permission and whose conditions the route can prove decides.
 * A refusal is returned, not thrown: in a 403 flood, throwing and catching it cost more
 * than deciding.
 */
export function decide(policy: CompiledPolicy, principal: Principal, method: string, target: Target): Decision | KeygateError {
  if (!isKnownMethod(method)) return new KeygateError('METHOD_NOT_ALLOWED', { detail: method, headers: { allow: METHODS.join(', ') } });
  const match = policy.matcher.match(method, target.segments);
  const roles = rolesOf(policy, principal);
  const route = match?.value ?? null;
  let unprovable = false;
  for (const name of roles) {
    const role = policy.roles.get(name);
    if (role === undefined) continue; // a key may name a role a newer policy dropped: it grants nothing
    if (route === null) {
      if (role.all && role.conditions.length === 0 && isEmpty(principal.conditions)) {
        return servedSpaceRefusal(policy, method, target.segments) ?? { route: null, params: NO_PARAMS, conditions: null, role: name };
      }
      continue;
    }
    if (!roleGrants(role, route.permission, route.resource.name)) continue;
    if (role.conditions.length === 0 && isEmpty(principal.conditions)) {
      return { route, params: match!.params, conditions: null, role: name };
    }
    const conditions = RESOLVED.get(principal, role, frozenConditions) ?? undefined;
    if (conditions === undefined || route.enforcement.kind === 'none') {
      unprovable = true;
      continue;
    }
    return { route, params: match!.params, conditions, role: name };
  }
  if (route === null) return NO_ROUTE;
  return routeRefusal(unprovable ? UNPROVABLE : NOT_GRANTED, route);
}

function isEmpty(o: object): boolean {
  for (const _ in o) return false;
  return true;
}
