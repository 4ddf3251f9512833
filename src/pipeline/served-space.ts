import { KeygateError } from '../errors/keygate-error.ts';
import type { CompiledPolicy, CompiledRoute } from '../policy/model.ts';
import type { Method } from '../policy/route-template.ts';

/**
 * The refusal of an undeclared request inside the path space of Keygate's own API, or null.
 *
 * An unconditioned `*` grant forwards routes the policy does not declare, so a server key's
 * `PUT /v1/api-keys/{id}` or `GET /v1/api-keys/{id}/foo` used to reach the backend, which
 * knows nothing of keys. The space is Keygate's where the deepest template matching the
 * path (or a prefix of it) has only served routes: the whole path is then 405 with the
 * methods Keygate serves there in `Allow`, a longer one 404. A path whose deepest template
 * also has a forwarded route stays the backend's, as before. Another case of a served path
 * is 404 too (see below).
 */
export function servedSpaceRefusal(policy: CompiledPolicy, method: Method, segments: readonly string[]): KeygateError | null {
  const exact = policy.matcher.deepest(segments);
  if (exact !== undefined) {
    if (!servedOnly(exact.values)) return null;
    if (!exact.whole) return new KeygateError('NOT_FOUND', { detail: `${pathOf(segments)}: no route of Keygate's own API here (undeclared, never forwarded)` });
    const allow = allowed(exact.methods);
    return new KeygateError('METHOD_NOT_ALLOWED', { detail: `${method} ${pathOf(segments)}: Keygate serves only ${allow} here (never forwarded)`, headers: { allow } });
  }
  // Another case of a served path: paths are case-sensitive, so it is no route of Keygate's,
  // but a backend whose router ignores case (Express's default, ASP.NET) would take it for one.
  const lower = segments.map((s) => s.toLowerCase());
  if (lower.every((s, i) => s === segments[i])) return null;
  const folded = policy.matcher.deepest(lower);
  if (folded !== undefined && servedOnly(folded.values)) {
    return new KeygateError('NOT_FOUND', { detail: `${pathOf(segments)}: another case of a path of Keygate's own API (paths are case-sensitive; never forwarded)` });
  }
  return null;
}

function pathOf(segments: readonly string[]): string {
  return segments.length === 0 ? '/' : '/' + segments.join('/');
}

function servedOnly(routes: readonly CompiledRoute[]): boolean {
  for (const route of routes) if (route.serve === null) return false;
  return true;
}

function allowed(methods: readonly Method[]): string {
  const list = [...methods];
  if (list.includes('GET') && !list.includes('HEAD')) list.push('HEAD');
  return list.join(', ');
}
