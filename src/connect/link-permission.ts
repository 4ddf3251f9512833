import { KeygateError } from '../errors/keygate-error.ts';
import type { Principal } from '../keys/principal.ts';
import { decide } from '../pipeline/authorize.ts';
import type { Target } from '../pipeline/canonical-path.ts';
import type { CompiledPolicy } from '../policy/model.ts';

const CREATE_LINK = 'connect.create-link';

/** The literal routes each policy serves with `connect.create-link` (a `{a|b}` alternation: its first spelling), found once per policy. */
const LINK_ROUTES = new WeakMap<CompiledPolicy, ReadonlyArray<{ method: string; target: Target }>>();

function linkRoutes(policy: CompiledPolicy): ReadonlyArray<{ method: string; target: Target }> {
  let found = LINK_ROUTES.get(policy);
  if (found !== undefined) return found;
  const out: Array<{ method: string; target: Target }> = [];
  for (const resource of policy.resources.values()) {
    for (const routes of resource.actions.values()) {
      for (const route of routes) {
        if (route.serve !== CREATE_LINK) continue;
        // A route with a parameter has no one address to judge.
        if (route.template.segments.some((s) => s.kind === 'param')) continue;
        const segments = route.template.segments.map((s) => (s.kind === 'literal' ? s.values[0]! : ''));
        out.push({ method: route.template.method, target: { segments, path: `/${segments.join('/')}`, query: '' } });
      }
    }
  }
  found = Object.freeze(out);
  LINK_ROUTES.set(policy, found);
  return found;
}

/**
 * Whether `principal` may create Connect links now, under `policy`: some route the policy
 * serves with `connect.create-link` (`POST /v1/connections` in texture.yaml) is granted to
 * it, as the request that made a link was. A link is finished under the power its maker has
 * at that moment (invariant 12): a token whose roles were cleared, or a key type the policy
 * no longer lets create links, finishes none of the links it made before.
 */
export function mayMakeLinks(policy: CompiledPolicy, principal: Principal): boolean {
  for (const { method, target } of linkRoutes(policy)) {
    const decision = decide(policy, principal, method, target);
    // As createLink judges it: granted, and with no conditions (a link cannot be proven against any).
    if (!(decision instanceof KeygateError) && decision.conditions === null) return true;
  }
  return false;
}
