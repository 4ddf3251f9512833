import { checkAllowReferenceId, checkConditions, checkDescription, checkExpiresAt, checkName, checkOrigins, checkRedirects, checkReferenceId, checkRoles, KeyInputError } from './key-fields.ts';
import { generateKey, newKeyId } from './key-format.ts';
import { isKeyType, KEY_TYPES, type KeyRecord, keyPrefixOf, prefixFor } from './key-record.ts';

export { KeyInputError } from './key-fields.ts';

export interface MintInput {
  readonly type: string;
  readonly referenceId?: string | null | undefined;
  readonly name?: string | null | undefined;
  readonly description?: string | null | undefined;
  readonly roles?: readonly string[] | undefined;
  /** `attr:value` strings (the CLI's form) or `{attr: [values]}`. */
  readonly conditions?: readonly string[] | Readonly<Record<string, readonly string[]>> | undefined;
  readonly allowedOrigins?: readonly string[] | undefined;
  readonly allowedRedirects?: readonly string[] | undefined;
  readonly allowReferenceId?: boolean | undefined;
  /** One of the two: how long from now, or when (RFC 3339). */
  readonly expiresInMs?: number | undefined;
  readonly expiresAt?: string | null | undefined;
  /** `cli` (the default), the acting key's id, or `link:<linkId>`. */
  readonly createdBy?: string | undefined;
  readonly linkId?: string | null | undefined;
  readonly now?: Date | undefined;
}

const CREATED_BY = /^(cli|key_[A-Za-z0-9]{1,64}|link:[A-Za-z0-9_-]{1,128})$/;

/**
 * Creates a key record and its plaintext; the plaintext leaves this function once and is
 * never stored. Every field goes through the rules of key-fields.ts.
 */
export function mintKey(input: MintInput): { record: KeyRecord; key: string } {
  if (!isKeyType(input.type)) throw new KeyInputError('type', `the key type must be one of ${KEY_TYPES.join(', ')}`);
  const type = input.type;
  const now = input.now ?? new Date();
  const referenceId = checkReferenceId(type, input.referenceId === '' ? undefined : input.referenceId);
  const roles = checkRoles(type, input.roles);
  const conditions = checkConditions(type, input.conditions);
  if (input.expiresInMs !== undefined && input.expiresAt !== undefined) throw new KeyInputError('expiresAt', 'give an expiry once: as a time or as a duration');
  if (input.expiresInMs !== undefined && !(input.expiresInMs > 0)) throw new KeyInputError('expiresAt', 'the expiry must be in the future');
  const expiresAt = input.expiresInMs !== undefined ? new Date(now.getTime() + input.expiresInMs).toISOString() : checkExpiresAt(input.expiresAt, now.getTime());
  const createdBy = input.createdBy ?? 'cli';
  if (!CREATED_BY.test(createdBy)) throw new KeyInputError('createdBy', `createdBy "${createdBy}" must be cli, a key id or link:<id>`);
  const key = generateKey(prefixFor(type));
  const at = now.toISOString();
  const record: KeyRecord = {
    id: newKeyId(),
    type,
    referenceId,
    name: checkName(input.name),
    description: checkDescription(input.description),
    roles,
    conditions,
    allowedOrigins: checkOrigins(type, input.allowedOrigins),
    allowedRedirects: checkRedirects(type, input.allowedRedirects),
    allowReferenceId: checkAllowReferenceId(type, input.allowReferenceId),
    keyPrefix: keyPrefixOf(key),
    createdBy,
    linkId: input.linkId ?? null,
    createdAt: at,
    updatedAt: at,
    expiresAt,
    revokedAt: null,
    lastUsedAt: null,
  };
  return { record, key };
}
