import { KeygateError } from '../errors/keygate-error.ts';
import type { Principal } from '../keys/principal.ts';
import type { CompiledResource, IdSource } from '../policy/model.ts';
import type { MaybePromise } from '../util/maybe-promise.ts';
import type { Condition } from './authorize.ts';
import { type AttributeSource, type Attributes, satisfies } from './proving/attributes.ts';
import type { LookupContext } from './proving/lookup-context.ts';

export function forbidden(detail: string): KeygateError {
  return new KeygateError('RESOURCE_NOT_ALLOWED', { detail });
}

/**
 * An id a condition is proven on: a non-empty, well-formed string, or a safe integer (the
 * strict parsers give a number only for the canonical text of one; `9007199254740993`,
 * which a float would read as …992, or `1.0`, is neither and is refused).
 */
export function idFromValue(v: unknown, source: IdSource): string {
  // A lone surrogate cannot be encoded into the lookup URL; refuse it as a bad id.
  if (typeof v === 'string' && v !== '' && v.isWellFormed()) return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  throw new KeygateError('MISSING_RESOURCE_ID', { detail: `${source.from}.${source.name} is missing, or not a well-formed string or a safe integer` });
}

function judge(attrs: Attributes, resource: CompiledResource, id: string, conditions: readonly Condition[]): void {
  // Not found and not yours look the same from outside: both 403, so ids cannot be probed.
  if (attrs === null) throw forbidden(`${resource.name} ${id} not found`);
  if (!satisfies(attrs, resource, conditions)) throw forbidden(`${resource.name} ${id} does not satisfy the key's conditions`);
}

/**
 * Looks the resource's attributes up and requires every condition to hold. Synchronous
 * (returns, or throws) when the attributes are cached; a promise only when the backend
 * must be asked, so a warm request never waits a microtask for its answer.
 */
export function proveByLookup(
  source: AttributeSource,
  resource: CompiledResource,
  id: string,
  conditions: readonly Condition[],
  principal: Principal,
  requestId: string,
  context?: LookupContext,
): MaybePromise<void> {
  const attrs = source.get(resource, id, principal, requestId, context);
  if (attrs instanceof Promise) return attrs.then((a) => judge(a, resource, id, conditions));
  judge(attrs, resource, id, conditions);
}
