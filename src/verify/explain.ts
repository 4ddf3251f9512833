import { KeygateError } from '../errors/keygate-error.ts';
import type { Principal } from '../keys/principal.ts';
import { authorize, rolesOf } from '../pipeline/authorize.ts';
import { canonicalize } from '../pipeline/canonical-path.ts';
import { buildUpstreamHeaders, mutateQuery } from '../pipeline/mutate.ts';
import type { CompiledPolicy } from '../policy/model.ts';
import { formatPosition } from '../policy/source.ts';

/** Human-readable answer to "what would Keygate do with this request from this key?" */
export function explain(policy: CompiledPolicy, principal: Principal, method: string, url: string): string {
  const out: string[] = [];
  const key = `${principal.type} key${principal.referenceId === null ? '' : ` (referenceId ${principal.referenceId})`}`;
  out.push(`request:   ${method} ${url}`);
  out.push(
    `key:       ${key}; roles ${rolesOf(policy, principal).join(', ') || '(none)'}${Object.keys(principal.conditions).length > 0 ? `; key conditions ${JSON.stringify(principal.conditions)}` : ''}`,
  );
  try {
    const target = canonicalize(url);
    out.push(`canonical: ${target.path}`);
    const decision = authorize(policy, principal, method, target);
    const route = decision.route;
    if (route === null) {
      out.push(`route:     none declared; role ${decision.role} grants "*" without conditions, so the request passes through`);
    } else {
      out.push(`route:     ${route.template.text} -> ${route.permission} (${formatPosition(route.position)})`);
      out.push(`params:    ${JSON.stringify(decision.params)}`);
      const role = policy.roles.get(decision.role)!;
      out.push(`rule:      role ${decision.role} (${formatPosition(role.position)}) grants ${route.permission}`);
    }
    const conditions = decision.conditions;
    if (route !== null && route.serve !== null) {
      const text = conditions === null ? 'none' : conditions.map((c) => `${c.attribute} ∈ {${c.values.join(', ')}}`).join(' and ');
      out.push(`conditions: ${text}${conditions === null ? '' : ': enforced by the handler'}`);
      out.push(`decision:  allow; served by Keygate (${route.serve}${route.shape === null ? '' : `, shape ${route.shape}`}), never forwarded`);
      return out.join('\n') + '\n';
    }
    if (conditions === null || route === null) out.push('conditions: none');
    else {
      const text = conditions.map((c) => `${c.attribute} ∈ {${c.values.join(', ')}}`).join(' and ');
      const e = route.enforcement;
      if (e.kind === 'filter') out.push(`conditions: ${text}: set as the only query filter; every list item is checked in the response`);
      else if (e.kind === 'response') out.push(`conditions: ${text}: checked on the response body before it reaches the client`);
      else if (e.kind === 'lookup') {
        const lookupPath = e.resource.lookup === null ? '?' : e.resource.lookup.template.text.slice(4).replace('{id}', `<${e.id.from}.${e.id.name}>`);
        const when = e.id.from === 'response' ? 'after the response arrives, before it reaches the client' : 'before anything is forwarded';
        out.push(`conditions: ${text}: proven on ${e.resource.name} ${e.id.from}.${e.id.name} by GET ${lookupPath} (cached ${(e.resource.lookup?.ttlMs ?? 0) / 1000} s), ${when}`);
        if (e.id.from === 'body') out.push('body:      read strictly (application/json, no Content-Encoding, duplicate keys refused); the same bytes are forwarded');
      }
    }
    const query = mutateQuery(target.query, conditions !== null && route?.enforcement.kind === 'filter' ? conditions : null);
    const { headers } = buildUpstreamHeaders({ rawHeaders: [], principal, requestId: '<request id>', remoteAddress: '<client>' });
    const added: string[] = [];
    for (let i = 0; i < headers.length; i += 2) if (headers[i]!.startsWith('x-keygate-')) added.push(`${headers[i]}: ${headers[i + 1]}`);
    out.push(`decision:  allow${conditions === null ? '' : ' if the conditions hold, else 403 RESOURCE_NOT_ALLOWED'}`);
    out.push(`forward:   ${method} ${target.path}${query === '' ? '' : '?' + query}`);
    out.push(`headers:   removed Texture-Api-Key, X-Keygate-*, rewrite and method-override headers, hop-by-hop; forwarding headers replaced; added ${added.join(', ')}`);
  } catch (err) {
    if (!(err instanceof KeygateError)) throw err;
    out.push(`decision:  deny ${err.status} ${err.code}${err.detail === undefined ? '' : ` (${err.detail})`}`);
  }
  return out.join('\n') + '\n';
}
