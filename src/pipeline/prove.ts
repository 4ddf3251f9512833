import { KeygateError } from '../errors/keygate-error.ts';
import type { Principal } from '../keys/principal.ts';
import type { CompiledResource, IdSource } from '../policy/model.ts';
import { satisfies, type AttributeSource } from './attributes.ts';
import type { Condition } from './authorize.ts';

export function forbidden(detail: string): KeygateError {
  return new KeygateError('RESOURCE_NOT_ALLOWED', { detail });
}

/** An id a condition is proven on: a non-empty, well-formed string (or a finite number). */
export function idFromValue(v: unknown, source: IdSource): string {
  // A lone surrogate cannot be encoded into the lookup URL; refuse it as a bad id.
  if (typeof v === 'string' && v !== '' && v.isWellFormed()) return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  throw new KeygateError('MISSING_RESOURCE_ID', { detail: `${source.from}.${source.name} is missing or not a well-formed string` });
}

/** Looks the resource's attributes up (cached) and requires every condition to hold. */
export async function proveByLookup(
  source: AttributeSource,
  resource: CompiledResource,
  id: string,
  conditions: readonly Condition[],
  principal: Principal,
  requestId: string,
): Promise<void> {
  const attrs = await source.get(resource, id, principal, requestId);
  // Not found and not yours look the same from outside: both 403, so ids cannot be probed.
  if (attrs === null) throw forbidden(`${resource.name} ${id} not found`);
  if (!satisfies(attrs, resource, conditions)) throw forbidden(`${resource.name} ${id} does not satisfy the key's conditions`);
}
