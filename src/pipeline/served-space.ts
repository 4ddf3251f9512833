import { KeygateError } from '../errors/keygate-error.ts';
import type { CompiledPolicy } from '../policy/model.ts';
import type { Method } from '../policy/route-template.ts';

/**
 * The refusal of an undeclared request inside the path space of Keygate's own API, or null.
 *
 * An unconditioned `*` grant forwards routes the policy does not declare, so a server key's
 * `PUT /v1/api-keys/{id}` or `GET /v1/api-keys/{id}/foo` used to reach the backend, which
 * knows nothing of keys. The space is Keygate's where the deepest template matching the
 * path (or a prefix of it) has only served routes: the whole path is then 405 with the
 * methods Keygate serves there in `Allow`, a longer one 404. A path whose deepest template
 * also has a forwarded route stays the backend's, as before.
 */
export function servedSpaceRefusal(policy: CompiledPolicy, method: Method, segments: readonly string[]): KeygateError | null {
  const deepest = policy.matcher.deepest(segments);
  if (deepest === undefined) return null;
  for (const route of deepest.values) if (route.serve === null) return null;
  const path = segments.length === 0 ? '/' : '/' + segments.join('/');
  if (!deepest.whole) return new KeygateError('NOT_FOUND', { detail: `${path}: no route of Keygate's own API here (undeclared, never forwarded)` });
  const allow = allowed(deepest.methods);
  return new KeygateError('METHOD_NOT_ALLOWED', { detail: `${method} ${path}: Keygate serves only ${allow} here (never forwarded)`, headers: { allow } });
}

function allowed(methods: readonly Method[]): string {
  const list = [...methods];
  if (list.includes('GET') && !list.includes('HEAD')) list.push('HEAD');
  return list.join(', ');
}
