import type { KeyEvent, KeyEventKind } from './key-event.ts';
import { type FoundKey, type KeyRecord, type KeyType, prefixFor } from './key-record.ts';
import type { KeyFilter } from './store.ts';

/** A keys row as SQLite returns it (JSON as text, booleans as integers). */
export interface KeyRow {
  id: string;
  type: string;
  reference_id: string | null;
  name: string | null;
  description: string | null;
  roles: string;
  conditions: string;
  allowed_origins: string;
  allowed_redirects: string;
  allow_reference_id: number;
  key_prefix: string | null;
  created_by: string;
  link_id: string | null;
  created_at: string;
  updated_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
  secret_expires_at?: string | null;
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

export const COLUMNS = NAMES.join(', ');
export const QUALIFIED_COLUMNS = NAMES.map((n) => `k.${n}`).join(', ');

export function rowToRecord(row: KeyRow): KeyRecord {
  const type = row.type as KeyType;
  return {
    id: row.id,
    type,
    referenceId: row.reference_id,
    name: row.name,
    description: row.description,
    roles: JSON.parse(row.roles) as string[],
    conditions: JSON.parse(row.conditions) as Record<string, string[]>,
    allowedOrigins: JSON.parse(row.allowed_origins) as string[],
    allowedRedirects: JSON.parse(row.allowed_redirects) as string[],
    allowReferenceId: row.allow_reference_id === 1,
    // Rows written around the store (bulk fills) have no prefix: the type's is all that is known.
    keyPrefix: row.key_prefix ?? prefixFor(type),
    createdBy: row.created_by,
    linkId: row.link_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at ?? row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
  };
}

export function rowToFound(row: KeyRow): FoundKey {
  return { ...rowToRecord(row), secretExpiresAt: row.secret_expires_at ?? null };
}

/** The values of an insert, in COLUMNS order. */
export function recordValues(r: KeyRecord): Array<string | number | null> {
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
    r.allowReferenceId ? 1 : 0,
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

export interface EventRow {
  seq: number;
  key_id: string;
  event: string;
  actor: string;
  at: string;
  changes: string;
}

export function rowToEvent(row: EventRow): KeyEvent {
  return { seq: Number(row.seq), keyId: row.key_id, event: row.event as KeyEventKind, actor: row.actor, at: row.at, changes: JSON.parse(row.changes) as Record<string, unknown> };
}

/** The WHERE clause of a filter (`?` parameters), without the keyword; '' for none. */
export function filterSql(filter: KeyFilter, params: Array<string | number>): string {
  const where: string[] = [];
  if (filter.type !== undefined) {
    where.push('type = ?');
    params.push(filter.type);
  }
  if (filter.referenceId !== undefined) {
    where.push('reference_id = ?');
    params.push(filter.referenceId);
  }
  if (filter.revoked !== undefined) where.push(filter.revoked ? 'revoked_at IS NOT NULL' : 'revoked_at IS NULL');
  if (filter.createdBy !== undefined) {
    where.push('created_by = ?');
    params.push(filter.createdBy);
  }
  return where.join(' AND ');
}
