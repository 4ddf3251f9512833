import type { KeyEvent } from '../keys/key-event.ts';
import type { KeyRecord } from '../keys/key-record.ts';

/** Free text may hold what breaks a terminal (the API lets a description hold a newline): shown with control characters as `?`. */
export function printable(s: string): string {
  return s.replace(/[\x00-\x1f\x7f]/g, '?');
}

function state(k: KeyRecord, now: number): string {
  if (k.revokedAt !== null) return `revoked ${k.revokedAt}`;
  if (k.expiresAt !== null && Date.parse(k.expiresAt) <= now) return `expired ${k.expiresAt}`;
  return 'active';
}

function list(values: readonly string[]): string {
  return values.length === 0 ? '-' : values.join(', ');
}

/** One key as `keys show` prints it: one `field: value` line each; never the secret. */
export function keyText(k: KeyRecord, now = Date.now()): string {
  const conditions = Object.entries(k.conditions).map(([a, vs]) => `${a} ∈ {${vs.join(', ')}}`);
  const rows: Array<[string, string]> = [
    ['id', k.id],
    ['type', k.type],
    ['state', state(k, now)],
    ['prefix', `${k.keyPrefix}…`],
    ['name', printable(k.name ?? '-')],
    ['description', printable(k.description ?? '-')],
    ['reference id', k.referenceId ?? '-'],
    ['roles', list(k.roles)],
    ['conditions', list(conditions)],
    ['origins', list(k.allowedOrigins)],
    ['redirects', list(k.allowedRedirects)],
    ['choose refs', k.allowReferenceId ? 'yes' : 'no'],
    ['expires', k.expiresAt ?? 'never'],
    ['created', `${k.createdAt} by ${k.createdBy}${k.linkId === null ? '' : ` (link ${k.linkId})`}`],
    ['updated', k.updatedAt],
    ['last used', k.lastUsedAt ?? 'never (or not yet written: up to a minute behind)'],
  ];
  return rows.map(([f, v]) => `${f.padEnd(13)}${v}`).join('\n') + '\n';
}

function changesText(e: KeyEvent): string {
  if (e.event === 'updated') {
    return Object.entries(e.changes)
      .map(([field, c]) => `${field} ${JSON.stringify((c as { from: unknown }).from)} -> ${JSON.stringify((c as { to: unknown }).to)}`)
      .join('; ');
  }
  if (e.event === 'rotated') {
    const c = e.changes as { keyPrefix?: { from: string; to: string }; previousSecretExpiresAt?: string | null };
    return `prefix ${c.keyPrefix?.from ?? '?'} -> ${c.keyPrefix?.to ?? '?'}; previous secret ${c.previousSecretExpiresAt == null ? 'stopped at once' : `works until ${c.previousSecretExpiresAt}`}`;
  }
  if (e.event === 'expired') return `expired at ${String((e.changes as { expiresAt?: unknown }).expiresAt)}`;
  return Object.keys(e.changes).length === 0 ? '' : JSON.stringify(e.changes);
}

/** One line per event: when, what, who, and what changed. */
export function eventLine(e: KeyEvent): string {
  return `${e.at.padEnd(24)}  ${e.event.padEnd(8)}  ${e.actor.padEnd(20)}  ${printable(changesText(e))}`.trimEnd() + '\n';
}
