/** Key types of the Texture model and of the EVRYTHNG model (operator keys, access tokens). */
export const KEY_TYPES = ['server', 'connect', 'scoped', 'operator', 'access-token'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export function isKeyType(value: string): value is KeyType {
  return (KEY_TYPES as readonly string[]).includes(value);
}

/** attribute -> allowed values. Values of one attribute are any-of; attributes are all-of. */
export type KeyConditions = Readonly<Record<string, readonly string[]>>;

/**
 * One key as the store holds it (schema version 2). The secret itself is never here: the
 * store keeps its SHA-256 hash beside the record, and `keyPrefix` (its first 8
 * characters) is all of it anyone is shown again.
 */
export interface KeyRecord {
  readonly id: string;
  readonly type: KeyType;
  readonly referenceId: string | null;
  readonly name: string | null;
  /** Free text for people (EVRYTHNG access tokens have one). */
  readonly description: string | null;
  /** Roles carried on the key itself (operator keys and access tokens), added to the type's roles. */
  readonly roles: readonly string[];
  readonly conditions: KeyConditions;
  /** Exact browser origins (`https://app.example.com`) this public key may be used from (origin-rules.ts). */
  readonly allowedOrigins: readonly string[];
  /** Exact URLs a Connect link made with this key may redirect to (origin-rules.ts). */
  readonly allowedRedirects: readonly string[];
  /** A connect key that may choose the referenceId of the keys its links mint. */
  readonly allowReferenceId: boolean;
  /** The first 8 characters of the current secret (`api_AbCd`, `scoped_A`); the bare type prefix for keys made before schema 2. */
  readonly keyPrefix: string;
  /** `cli`, the id of the key that created it, or `link:<linkId>` for a scoped key a Connect link minted. */
  readonly createdBy: string;
  /** The Connect link that minted this scoped key. */
  readonly linkId: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly expiresAt: string | null;
  readonly revokedAt: string | null;
  /** When the key was last used, to within a second, written at most once a minute (last-used.ts). */
  readonly lastUsedAt: string | null;
}

/**
 * A record found by one of its secrets. During a rotation's grace period a key has more
 * than one: the previous secrets stop working at `secretExpiresAt` (null for the current
 * secret, which lives as long as the key).
 */
export interface FoundKey extends KeyRecord {
  readonly secretExpiresAt: string | null;
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

/** How many characters of a secret a key object shows (`api_AbCd`): enough to tell keys apart, about 24 bits of it. */
const KEY_PREFIX_LENGTH = 8;

export function keyPrefixOf(secret: string): string {
  return secret.slice(0, KEY_PREFIX_LENGTH);
}

/** Key types that carry roles and conditions of their own; the others take them from the policy. */
export function carriesRoles(type: KeyType): boolean {
  return type === 'operator' || type === 'access-token';
}

/** Key types meant for browsers and apps (Texture: "alright to be used publicly"); the others are secret. */
export function isPublicType(type: KeyType): boolean {
  return type === 'connect' || type === 'scoped';
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

/** Whether a key is revoked or expired at `nowMs`, or neither (the one reading of its state every check uses). */
export function inactiveAt(record: Pick<KeyRecord, 'revokedAt' | 'expiresAt'>, nowMs: number): 'revoked' | 'expired' | null {
  if (record.revokedAt !== null) return 'revoked';
  if (record.expiresAt !== null && Date.parse(record.expiresAt) <= nowMs) return 'expired';
  return null;
}
