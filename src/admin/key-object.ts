import type { KeyRecord } from '../keys/key-record.ts';

/**
 * A key as the management API shows it (Texture shape): everything about it but the
 * secret, of which only `keyPrefix` (its first 8 characters) is ever shown again.
 */
export function keyObject(r: KeyRecord): Record<string, unknown> {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    type: r.type,
    keyPrefix: r.keyPrefix,
    referenceId: r.referenceId,
    roles: r.roles,
    conditions: r.conditions,
    allowedOrigins: r.allowedOrigins,
    allowedRedirects: r.allowedRedirects,
    allowReferenceId: r.allowReferenceId,
    revoked: r.revokedAt !== null,
    revokedAt: r.revokedAt,
    expiresAt: r.expiresAt,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    lastUsedAt: r.lastUsedAt,
    createdBy: r.createdBy,
  };
}

/** Conditions in the EVRYTHNG form: `attribute:value` strings. */
function conditionStrings(conditions: KeyRecord['conditions']): string[] {
  const out: string[] = [];
  for (const attribute of Object.keys(conditions)) for (const v of conditions[attribute]!) out.push(`${attribute}:${v}`);
  return out;
}

/**
 * An access token as EVRYTHNG's Access Tokens API shows it: its roles are its
 * `policies`, its conditions `attribute:value` strings; the secret, once, as `apiKey`.
 */
export function accessTokenObject(r: KeyRecord): Record<string, unknown> {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    policies: r.roles,
    conditions: conditionStrings(r.conditions),
    keyPrefix: r.keyPrefix,
    revoked: r.revokedAt !== null,
    expiresAt: r.expiresAt,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    lastUsedAt: r.lastUsedAt,
  };
}
