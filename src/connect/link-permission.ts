import { KeygateError } from '../errors/keygate-error.ts';
import type { Principal } from '../keys/principal.ts';
import { decide } from '../pipeline/authorize.ts';
import type { CompiledPolicy } from '../policy/model.ts';

const CREATE_LINK = 'connect.create-link';

/**
 * Whether `principal` may create Connect links now, under `policy`: some route the policy
 * serves with `connect.create-link` (`POST /v1/connections` in texture.yaml) is granted to
 * it, as the request that made a link was. A link is finished under the power its maker has
 * at that moment (invariant 12): a token whose roles were cleared, or a key type the policy
 * no longer lets create links, finishes none of the links it made before.
 */
export function mayMakeLinks(policy: CompiledPolicy, principal: Principal): boolean {
  for (const resource of policy.resources.values()) {
    for (const routes of resource.actions.values()) {
      for (const route of routes) {
        if (route.serve !== CREATE_LINK) continue;
        // A literal route (a `{a|b}` alternation: its first spelling); a route with a parameter has no one address to judge.
        const segments: string[] = [];
        for (const s of route.template.segments) {
          if (s.kind === 'param') break;
          segments.push(s.values[0]!);
        }
        if (segments.length !== route.template.segments.length) continue;
        const decision = decide(policy, principal, route.template.method, { segments, path: `/${segments.join('/')}`, query: '' });
        // As createLink judges it: granted, and with no conditions (a link cannot be proven against any).
        if (!(decision instanceof KeygateError) && decision.conditions === null) return true;
      }
    }
  }
  return false;
}
