import type { KeyEvent, KeyEventKind } from './key-event.ts';
import { type FoundKey, type KeyConditions, type KeyRecord, type KeyType, prefixFor } from './key-record.ts';
import type { KeyFilter } from './store.ts';

/** A keygate_keys row as `pg` returns it (JSONB parsed, TIMESTAMPTZ as Date). */
export interface PgKeyRow {
  id: string;
  type: string;
  reference_id: string | null;
  name: string | null;
  description: string | null;
  roles: unknown;
  conditions: unknown;
  allowed_origins: unknown;
  allowed_redirects: unknown;
  allow_reference_id: boolean;
  key_prefix: string | null;
  created_by: string;
  link_id: string | null;
  created_at: Date | string;
  updated_at: Date | string | null;
  expires_at: Date | string | null;
  revoked_at: Date | string | null;
  last_used_at: Date | string | null;
  secret_expires_at?: Date | string | null;
}

const NAMES = [
  'id',
  'type',
  'reference_id',
  'name',
  'description',
  'roles',
  'conditions',
  'allowed_origins',
  'allowed_redirects',
  'allow_reference_id',
  'key_prefix',
  'created_by',
  'link_id',
  'created_at',
  'updated_at',
  'expires_at',
  'revoked_at',
  'last_used_at',
] as const;

export const PG_COLUMNS = NAMES.join(', ');
export const PG_QUALIFIED_COLUMNS = NAMES.map((n) => `k.${n}`).join(', ');

function iso(value: Date | string): string {
  return value instanceof Date ? value.toISOString() : new Date(value).toISOString();
}

function isoOrNull(value: Date | string | null | undefined): string | null {
  return value === null || value === undefined ? null : iso(value);
}

function json<T>(value: unknown): T {
  return (typeof value === 'string' ? JSON.parse(value) : value) as T;
}

export function pgRowToRecord(row: PgKeyRow): KeyRecord {
  const type = row.type as KeyType;
  const createdAt = iso(row.created_at);
  return {
    id: row.id,
    type,
    referenceId: row.reference_id,
    name: row.name,
    description: row.description,
    roles: json<string[]>(row.roles),
    conditions: json<KeyConditions>(row.conditions),
    allowedOrigins: json<string[]>(row.allowed_origins),
    allowedRedirects: json<string[]>(row.allowed_redirects),
    allowReferenceId: row.allow_reference_id === true,
    keyPrefix: row.key_prefix ?? prefixFor(type),
    createdBy: row.created_by,
    linkId: row.link_id,
    createdAt,
    updatedAt: isoOrNull(row.updated_at) ?? createdAt,
    expiresAt: isoOrNull(row.expires_at),
    revokedAt: isoOrNull(row.revoked_at),
    lastUsedAt: isoOrNull(row.last_used_at),
  };
}

export function pgRowToFound(row: PgKeyRow): FoundKey {
  return { ...pgRowToRecord(row), secretExpiresAt: isoOrNull(row.secret_expires_at) };
}

/** The values of an insert, in PG_COLUMNS order (JSON as text, cast in the statement). */
export function pgRecordValues(r: KeyRecord): unknown[] {
  return [
    r.id,
    r.type,
    r.referenceId,
    r.name,
    r.description,
    JSON.stringify(r.roles),
    JSON.stringify(r.conditions),
    JSON.stringify(r.allowedOrigins),
    JSON.stringify(r.allowedRedirects),
    r.allowReferenceId,
    r.keyPrefix,
    r.createdBy,
    r.linkId,
    r.createdAt,
    r.updatedAt,
    r.expiresAt,
    r.revokedAt,
    r.lastUsedAt,
  ];
}

/** `$1, $2::jsonb, …`: the placeholders of an insert in PG_COLUMNS order, then the key hash. */
export const PG_INSERT_PLACEHOLDERS = [...NAMES, 'key_hash'].map((n, i) => `$${i + 1}${['roles', 'conditions', 'allowed_origins', 'allowed_redirects'].includes(n) ? '::jsonb' : ''}`).join(', ');

export interface PgEventRow {
  seq: string | number;
  key_id: string;
  event: string;
  actor: string;
  at: Date | string;
  changes: unknown;
}

export function pgRowToEvent(row: PgEventRow): KeyEvent {
  return { seq: Number(row.seq), keyId: row.key_id, event: row.event as KeyEventKind, actor: row.actor, at: iso(row.at), changes: json<Record<string, unknown>>(row.changes) };
}

/** The WHERE conditions of a filter, numbering parameters after those already in `params`. */
export function pgFilterSql(filter: KeyFilter, params: unknown[]): string[] {
  const where: string[] = [];
  if (filter.type !== undefined) where.push(`type = $${params.push(filter.type)}`);
  if (filter.referenceId !== undefined) where.push(`reference_id = $${params.push(filter.referenceId)}`);
  if (filter.revoked !== undefined) where.push(filter.revoked ? 'revoked_at IS NOT NULL' : 'revoked_at IS NULL');
  if (filter.createdBy !== undefined) where.push(`created_by = $${params.push(filter.createdBy)}`);
  return where;
}
