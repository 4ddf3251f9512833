import { KeygateError } from '../errors/keygate-error.ts';
import type { CompiledPolicy, CompiledRoute } from '../policy/model.ts';
import type { Method } from '../policy/route-template.ts';
import { foldCase } from '../util/fold-case.ts';

/**
 * The refusal of an undeclared request inside the path space of Keygate's own API, or null.
 *
 * An unconditioned `*` grant forwards routes the policy does not declare, so a server key's
 * `PUT /v1/api-keys/{id}` or `GET /v1/api-keys/{id}/foo` used to reach the backend, which
 * knows nothing of keys. The space is Keygate's where the deepest template matching the
 * path (or a prefix of it) has only served routes: the whole path is then 405 with the
 * methods Keygate serves there in `Allow`, a longer one 404. A path whose deepest template
 * also has a forwarded route stays the backend's, as before. Another spelling of a served
 * path is 404 too (see below).
 */
export function servedSpaceRefusal(policy: CompiledPolicy, method: Method, segments: readonly string[]): KeygateError | null {
  const exact = policy.matcher.deepest(segments);
  if (exact !== undefined) {
    if (!servedOnly(exact.values)) return null;
    if (!exact.whole) return new KeygateError('NOT_FOUND', { detail: `${pathOf(segments)}: no route of Keygate's own API here (undeclared, never forwarded)` });
    const allow = allowed(exact.methods);
    return new KeygateError('METHOD_NOT_ALLOWED', { detail: `${method} ${pathOf(segments)}: Keygate serves only ${allow} here (never forwarded)`, headers: { allow } });
  }
  // Another spelling of a served path (another case, a fullwidth letter, a trailing dot, a
  // format suffix): no route of Keygate's, as paths are case-sensitive, but a backend whose
  // router folds case (Express's default, ASP.NET), trims dots (IIS) or reads a suffix as a
  // format (Rails) would take it for one.
  for (const variant of spellings(segments)) {
    const folded = policy.matcher.deepest(variant, foldCase);
    if (folded !== undefined && servedOnly(folded.values)) {
      return new KeygateError('NOT_FOUND', { detail: `${pathOf(segments)}: another spelling of a path of Keygate's own API (paths are exact; never forwarded)` });
    }
  }
  return null;
}

/** The path folded, and (when it differs) folded with its last segment's trailing dots, spaces and format suffix cut. */
function spellings(segments: readonly string[]): string[][] {
  const folded = segments.map(foldCase);
  const last = folded.at(-1);
  if (last === undefined) return [folded];
  const cut = last.replace(/[.\s]+$/, '').replace(/\.[a-z0-9]{1,10}$/, '');
  return cut === last || cut === '' ? [folded] : [folded, [...folded.slice(0, -1), cut]];
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

function pathOf(segments: readonly string[]): string {
  return segments.length === 0 ? '/' : '/' + segments.join('/');
}
