import { KeygateError } from '../errors/keygate-error.ts';

function invalid(field: string, message: string): never {
  throw new KeygateError('INVALID_FIELD', { message: `${field}: ${message}`, field });
}

/**
 * A body of the management API: a JSON object with only the fields the endpoint knows
 * (strictly: an unknown field is refused, not ignored, so a typo never passes silently
 * as "unchanged"); `fixed` fields are named as ones that cannot be changed.
 */
export function bodyFields(body: unknown, allowed: readonly string[], fixed: readonly string[] = []): Record<string, unknown> {
  if (body === undefined) return {};
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new KeygateError('INVALID_FIELD', { message: 'the body must be a JSON object' });
  const fields = body as Record<string, unknown>;
  for (const name of Object.keys(fields)) {
    if (fixed.includes(name)) invalid(name, 'cannot be changed (create a new key instead)');
    if (!allowed.includes(name)) invalid(name, `unknown field (allowed: ${allowed.join(', ')})`);
  }
  return fields;
}

export function stringField(fields: Record<string, unknown>, name: string, required = false): string | undefined {
  const value = fields[name];
  if (value === undefined) {
    if (required) invalid(name, 'is required');
    return undefined;
  }
  if (typeof value !== 'string') invalid(name, 'must be a string');
  return value;
}

export function stringListField(fields: Record<string, unknown>, name: string): string[] | undefined {
  const value = fields[name];
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) invalid(name, 'must be a list of strings');
  return value as string[];
}

export function booleanField(fields: Record<string, unknown>, name: string): boolean | undefined {
  const value = fields[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') invalid(name, 'must be true or false');
  return value;
}

/** A whole number in [min, max]; strict JSON keeps a number it cannot hold exactly as text, which is refused here. */
export function integerField(fields: Record<string, unknown>, name: string, min: number, max: number): number | undefined {
  const value = fields[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) invalid(name, `must be a whole number from ${min} to ${max}`);
  return value;
}

/** A nullable field given as null, a value, or absent (unchanged). */
export function has(fields: Record<string, unknown>, name: string): boolean {
  return Object.hasOwn(fields, name);
}
