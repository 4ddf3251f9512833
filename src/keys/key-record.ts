/** Key types of the Texture model (seeds 000–002) and of the EVRYTHNG model (seed 003). */
export const KEY_TYPES = ['server', 'connect', 'scoped', 'operator', 'access-token'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export function isKeyType(value: string): value is KeyType {
  return (KEY_TYPES as readonly string[]).includes(value);
}

/** attribute -> allowed values. Values of one attribute are any-of; attributes are all-of. */
export type KeyConditions = Readonly<Record<string, readonly string[]>>;

export interface KeyRecord {
  readonly id: string;
  readonly type: KeyType;
  readonly referenceId: string | null;
  readonly name: string | null;
  /** Roles carried on the key itself (operator keys and access tokens), added to the type's roles. */
  readonly roles: readonly string[];
  readonly conditions: KeyConditions;
  readonly createdAt: string;
  readonly expiresAt: string | null;
  readonly revokedAt: string | null;
}

export interface NewKey {
  type: KeyType;
  referenceId?: string | null;
  name?: string | null;
  roles?: string[];
  conditions?: Record<string, string[]>;
  expiresAt?: string | null;
}

/**
 * A referenceId travels to the backend in an identity header and a query parameter, so
 * it must survive both unchanged: visible ASCII only (no spaces, no CR/LF), at most 256.
 * No comma: a filter's values are joined by commas (`referenceId=a,b` is any-of), so
 * `ref-carol,ref-bob` would be read by the backend as two owners.
 */
const REFERENCE_ID = /^[\x21-\x2b\x2d-\x7e]{1,256}$/;

export const REFERENCE_ID_RULE = '1 to 256 visible ASCII characters, without commas';

export function isValidReferenceId(value: string): boolean {
  return REFERENCE_ID.test(value);
}

/**
 * A stored key whose referenceId or condition values could not be used as written (a row
 * written around the CLI): such a key is refused (401), never forwarded with a filter
 * that means more than it says.
 */
export function hasUsableValues(record: KeyRecord): boolean {
  if (record.referenceId !== null && !isValidReferenceId(record.referenceId)) return false;
  for (const attribute in record.conditions) {
    const values = record.conditions[attribute];
    if (!Array.isArray(values) || values.some((v) => typeof v !== 'string' || v.includes(','))) return false;
  }
  return true;
}

export function prefixFor(type: KeyType): 'api_' | 'scoped_' {
  return type === 'scoped' ? 'scoped_' : 'api_';
}

/** Parses `attr:value` strings (EVRYTHNG form) into the grouped form. */
export function parseConditionArgs(args: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const arg of args) {
    const at = arg.indexOf(':');
    if (at <= 0 || at === arg.length - 1) throw new Error(`condition "${arg}" must be written attribute:value`);
    const attr = arg.slice(0, at);
    const value = arg.slice(at + 1);
    if (value.includes(',')) throw new Error(`condition "${arg}": values may not contain a comma (repeat --condition instead)`);
    (out[attr] ??= []).push(value);
  }
  return out;
}
