import type { FieldChange } from './key-event.ts';
import type { KeyRecord } from './key-record.ts';
import type { KeyChanges } from './store.ts';

const CHANGEABLE = ['name', 'description', 'roles', 'conditions', 'allowedOrigins', 'allowedRedirects', 'allowReferenceId', 'expiresAt'] as const;

/** A value's text with object keys sorted, so `{a, b}` and `{b, a}` compare equal. */
function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'undefined';
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const o = value as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
    .join(',')}}`;
}

/**
 * The record after `changes`, and what actually changed (`{field: {from, to}}`): the
 * update event's content. A field given with its current value is not a change.
 */
export function applyChanges(record: KeyRecord, changes: KeyChanges, at: string): { next: KeyRecord; changed: Record<string, FieldChange> } {
  const changed: Record<string, FieldChange> = {};
  const next: Record<string, unknown> = { ...record };
  for (const field of CHANGEABLE) {
    if (!(field in changes) || changes[field] === undefined) continue;
    const to = changes[field];
    if (canonical(to) === canonical(record[field])) continue;
    changed[field] = { from: record[field], to };
    next[field] = to;
  }
  if (Object.keys(changed).length > 0) next.updatedAt = at;
  return { next: next as unknown as KeyRecord, changed };
}

/** What a `created` event records: the settings, never the secret (the prefix is shown anyway). */
export function createdChanges(record: KeyRecord): Record<string, unknown> {
  return {
    type: record.type,
    name: record.name,
    description: record.description,
    referenceId: record.referenceId,
    roles: record.roles,
    conditions: record.conditions,
    allowedOrigins: record.allowedOrigins,
    allowedRedirects: record.allowedRedirects,
    allowReferenceId: record.allowReferenceId,
    expiresAt: record.expiresAt,
    keyPrefix: record.keyPrefix,
    linkId: record.linkId,
  };
}
