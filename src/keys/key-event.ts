/**
 * The audit trail of a key: one event per create, update, rotate, revoke and expiry,
 * append-only, in the store beside the keys (table `key_events`). An event says who
 * (`cli`, the acting key's id, `link:<id>`, or `keygate` for an expiry it noticed), when,
 * and what changed; never a secret or its hash. `seq` grows with every event a store
 * records, so it doubles as a change feed (sqlite-store.ts reads it to learn of other
 * processes' writes).
 */
const KEY_EVENT_KINDS = ['created', 'updated', 'rotated', 'revoked', 'expired'] as const;
export type KeyEventKind = (typeof KEY_EVENT_KINDS)[number];

/** The actor of an event nobody made: a key reaching its expiry, recorded by whichever process noticed first. */
export const EXPIRY_ACTOR = 'keygate';

export interface KeyEvent {
  readonly seq: number;
  readonly keyId: string;
  readonly event: KeyEventKind;
  readonly actor: string;
  readonly at: string;
  /** created: the settings; updated: `{field: {from, to}}`; rotated: the prefixes and the grace; expired: the expiry. */
  readonly changes: Readonly<Record<string, unknown>>;
}

/** A field's change as an update event records it. */
export interface FieldChange {
  readonly from: unknown;
  readonly to: unknown;
}
