import { KeygateError } from '../errors/keygate-error.ts';
import type { Principal } from '../keys/principal.ts';
import { type Condition, decide } from '../pipeline/authorize.ts';
import type { Target } from '../pipeline/canonical-path.ts';
import type { CompiledPolicy, CompiledRoute } from '../policy/model.ts';

/**
 * What a key may do on one route: nothing (null), everything (`all`), or only on resources
 * meeting these conditions (all-of; each any-of its values).
 */
export type Reach = null | 'all' | readonly Condition[];

/** Every route of a policy, with a request that reaches exactly it, built once per policy. */
interface Probe {
  readonly route: CompiledRoute | null;
  readonly method: string;
  readonly target: Target;
}

/** A path segment no policy spells: it stands for every route parameter. */
const PARAM = '\uffff';
const PROBES = new WeakMap<CompiledPolicy, readonly Probe[]>();

function probeTarget(segments: string[]): Target {
  return { segments, path: '/' + segments.map(encodeURIComponent).join('/'), query: '' };
}

/**
 * One request per route of the policy (its literal segments, a parameter for each
 * `{param}`), and one that no route matches (what a pass-through `*` role reaches). Each
 * is matched back to check that it reaches the route it was built from.
 */
function probes(policy: CompiledPolicy): readonly Probe[] {
  let out = PROBES.get(policy);
  if (out !== undefined) return out;
  const list: Probe[] = [];
  for (const resource of policy.resources.values()) {
    for (const routes of resource.actions.values()) {
      for (const route of routes) {
        const segments = route.template.segments.map((s) => (s.kind === 'param' ? PARAM : s.values[0]!));
        const method = route.template.method;
        if (policy.matcher.match(method, segments)?.value !== route) throw new Error(`route ${route.template.text} cannot be probed`);
        list.push({ route, method, target: probeTarget(segments) });
      }
    }
  }
  // A path deeper than any route: an undeclared one, so a `*` role's pass-through is compared too.
  const undeclared = Array.from({ length: 64 }, () => PARAM);
  if (policy.matcher.match('GET', undeclared) === undefined) list.push({ route: null, method: 'GET', target: probeTarget(undeclared) });
  out = Object.freeze(list);
  PROBES.set(policy, out);
  return out;
}

function reachOf(policy: CompiledPolicy, key: Principal, probe: Probe): Reach {
  const d = decide(policy, key, probe.method, probe.target);
  if (d instanceof KeygateError) return null;
  return d.conditions ?? 'all';
}

/** Whether `inner` is within `outer`: every resource `inner` reaches, `outer` reaches too. */
function reachWithin(inner: Reach, outer: Reach): boolean {
  if (inner === null || outer === 'all') return true;
  if (outer === null || inner === 'all') return false;
  // All-of over attributes: each of outer's conditions must be implied by one of inner's, on the same attribute with no other value.
  return outer.every((o) => inner.some((i) => i.attribute === o.attribute && i.values.every((v) => o.values.includes(v))));
}

function describeReach(reach: Reach): string {
  if (reach === null) return 'not at all';
  if (reach === 'all') return 'without conditions';
  return `where ${reach.map((c) => `${c.attribute} ∈ {${c.values.join(', ')}}`).join(' and ')}`;
}

/**
 * The first route on which `target` may do more than `actor` (judged by the policy, with
 * each key's roles, role conditions and key conditions, exactly as requests are judged),
 * or more than `cap` allows; undefined when it may do nothing more anywhere.
 */
export function firstWider(policy: CompiledPolicy, target: Principal, actor: Principal, cap: Reach): string | undefined {
  for (const probe of probes(policy)) {
    const t = reachOf(policy, target, probe);
    if (t === null) continue;
    const a = reachOf(policy, actor, probe);
    const where = probe.route === null ? 'routes the policy does not declare' : `${probe.route.permission} (${probe.route.template.text})`;
    if (!reachWithin(t, a)) return `it would reach ${where} ${describeReach(t)}, the acting key ${describeReach(a)}`;
    if (!reachWithin(t, cap)) return `it would reach ${where} ${describeReach(t)}, beyond the conditions of the acting key's grant (${describeReach(cap)})`;
  }
  return undefined;
}
