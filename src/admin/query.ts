import { KeygateError } from '../errors/keygate-error.ts';

function invalid(name: string, message: string): never {
  throw new KeygateError('INVALID_PARAMETER', { message: `${name}: ${message}`, field: name });
}

/**
 * The query of a management API request: only known parameters, each at most once (an
 * unknown or repeated one is refused, not ignored).
 */
export function queryParams(query: string, allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  if (query === '') return out;
  for (const [name, value] of new URLSearchParams(query)) {
    if (!allowed.includes(name)) invalid(name, `unknown parameter (allowed: ${allowed.join(', ')})`);
    if (out.has(name)) invalid(name, 'given more than once');
    out.set(name, value);
  }
  return out;
}

const MAX_PER_PAGE = 100;
const DEFAULT_PER_PAGE = 50;
const MAX_PAGE = 10_000_000;

function whole(params: Map<string, string>, name: string, fallback: number, max: number): number {
  const raw = params.get(name);
  if (raw === undefined) return fallback;
  if (!/^[1-9][0-9]{0,7}$/.test(raw) || Number(raw) > max) invalid(name, `must be a whole number from 1 to ${max}`);
  return Number(raw);
}

/** `page` (from 1) and `perPage` (1 to 100, default 50), as Texture lists page. */
export function pageParams(params: Map<string, string>): { page: number; perPage: number } {
  return { page: whole(params, 'page', 1, MAX_PAGE), perPage: whole(params, 'perPage', DEFAULT_PER_PAGE, MAX_PER_PAGE) };
}

export function booleanParam(params: Map<string, string>, name: string): boolean | undefined {
  const raw = params.get(name);
  if (raw === undefined) return undefined;
  if (raw !== 'true' && raw !== 'false') invalid(name, 'must be true or false');
  return raw === 'true';
}

/** A Texture list envelope; `totalPages` is 0 when nothing matches. */
export function listEnvelope(data: readonly unknown[], page: number, perPage: number, totalItems: number): Record<string, unknown> {
  return { data, page, perPage, totalItems, totalPages: Math.ceil(totalItems / perPage) };
}

export { invalid as invalidParameter };
