import type { FieldChange, KeyEvent } from './key-event.ts';
import type { FoundKey, KeyConditions, KeyRecord, KeyType } from './key-record.ts';

/** Which keys a listing or a count is about (all given filters apply). */
export interface KeyFilter {
  readonly type?: KeyType | undefined;
  readonly referenceId?: string | undefined;
  /** true: only revoked keys; false: only keys not revoked. */
  readonly revoked?: boolean | undefined;
  /** Only keys this actor created (a key that does not reach everything sees only its own: docs/keys.md). */
  readonly createdBy?: string | undefined;
}

/**
 * One page of `list()`: keys in listing order (creation time, then id). Paging is by key
 * (`afterId`, keyset: the next page costs the same however deep it is, and a key created
 * meanwhile never shifts a page) or by `offset` (the management API's numbered pages).
 */
export interface KeyListQuery extends KeyFilter {
  /** Only keys after this one in listing order; the store throws UnknownKeyError when no key has this id. */
  readonly afterId?: string | undefined;
  readonly offset?: number | undefined;
  readonly limit: number;
}

/** What an update may change (absent: unchanged). Type, referenceId and the secret never change here. */
export interface KeyChanges {
  readonly name?: string | null;
  readonly description?: string | null;
  readonly roles?: readonly string[];
  readonly conditions?: KeyConditions;
  readonly allowedOrigins?: readonly string[];
  readonly allowedRedirects?: readonly string[];
  readonly allowReferenceId?: boolean;
  readonly expiresAt?: string | null;
}

/** A rotation: the new secret's hash and prefix, and until when the current secret keeps working (null: not at all). */
export interface Rotation {
  readonly keyHash: string;
  readonly keyPrefix: string;
  readonly previousExpiresAt: string | null;
}

/**
 * A key's lastUsedAt is written only when it moves on by at least this much: each process
 * writes a key's use at most once a minute (last-used.ts), and several processes using
 * one key do not each write it within the same minute.
 */
export const LAST_USED_STEP_MS = 55_000;

/** One key's last use, as the usage recorder batches it (last-used.ts). */
export interface KeyUse {
  readonly id: string;
  readonly at: string;
}

/**
 * What a store pushes to the processes that read it: these keys changed (revoked,
 * updated, rotated), or `all` when it cannot say which (the change feed was interrupted):
 * a key cache forgets them and asks again.
 */
export type KeyChange = { readonly kind: 'keys'; readonly ids: readonly string[] } | { readonly kind: 'all' };

/**
 * A check run inside a write's transaction, on the rows as they are then, before anything
 * is written; its throw writes nothing. `actor` is the row of the key `actorId` (undefined
 * when there is none), `target` the written key as it will be (insert, update) or as it
 * is (rotate). What was judged before the write (the acting key's power, the key it acts
 * on) may have changed while the write waited for the store's lock: a revocation, a
 * narrowing, another update. Judging it here, where it cannot change any more, is what
 * makes the judgement hold for what is written (invariants 7 and 12).
 */
export interface WriteGuard {
  readonly actorId: string;
  check(actor: KeyRecord | undefined, target: KeyRecord): void;
}

/**
 * What every key store provides. Lookups are by SHA-256 hash only: no store ever sees a
 * plaintext key. `findByHash` may answer synchronously (SQLite) or with a promise
 * (PostgreSQL); the cache handles both. Every write records its audit event in the same
 * transaction (key-event.ts), so no path changes a key without leaving a trace.
 */
export interface KeyStore {
  readonly kind: 'sqlite' | 'postgres';
  /** The key whose current secret, or a previous one still in its grace period, has this hash. */
  findByHash(keyHash: string): FoundKey | undefined | Promise<FoundKey | undefined>;
  /** Inserts a key and its `created` event (actor: the record's createdBy). */
  insert(record: KeyRecord, keyHash: string, guard?: WriteGuard): Promise<void>;
  get(id: string): Promise<KeyRecord | undefined>;
  /** At most `query.limit` keys; callers page with `afterId` or `offset` (see KeyListQuery). */
  list(query: KeyListQuery): Promise<KeyRecord[]>;
  count(filter: KeyFilter): Promise<number>;
  /**
   * Applies the changes that differ and records an `updated` event with them (none when
   * nothing differs); undefined when no key has that id. `guard`, when given, sees the key
   * as it will be written — the changes applied to the row as it is inside the write, not
   * as it was read before: two updates at once, each allowed alone, cannot together write
   * a key neither would have been allowed to make.
   */
  update(id: string, changes: KeyChanges, actor: string, guard?: WriteGuard): Promise<{ readonly record: KeyRecord; readonly changed: Readonly<Record<string, FieldChange>> } | undefined>;
  /** Replaces the current secret, keeping the previous one until `previousExpiresAt`; records `rotated`. */
  rotate(id: string, rotation: Rotation, actor: string, guard?: WriteGuard): Promise<KeyRecord | undefined>;
  /** Sets revokedAt once (records `revoked` the first time). Returns false when no key has that id. */
  revoke(id: string, actor?: string): Promise<boolean>;
  /** A key's events, oldest first. */
  events(id: string, page: { readonly offset: number; readonly limit: number }): Promise<KeyEvent[]>;
  countEvents(id: string): Promise<number>;
  /**
   * Records `expired` for every key whose expiry has passed and that has none yet (at most
   * once per key, whichever process gets there first), and forgets previous secrets whose
   * grace has ended. Returns the events it recorded.
   */
  recordExpiries(now: Date): Promise<KeyEvent[]>;
  /** Writes lastUsedAt for a batch of keys; a key's time is written only when it moves on by a minute (last-used.ts). */
  touch(uses: readonly KeyUse[]): Promise<void>;
  /**
   * Throws (with the reason) when requests would fail: runs a real indexed lookup on the
   * keys table, as a request does, not a bare `SELECT 1`; used by /readyz.
   */
  ping(): Promise<void>;
  /**
   * Called with the keys another process (or this one) changed, within a second: by
   * LISTEN/NOTIFY (PostgreSQL) or by reading the change feed on an interval (SQLite).
   * Subscribing starts it. The key cache TTL stays the bound when a change is missed.
   */
  onChange?(listener: (change: KeyChange) => void): void;
  /**
   * A file store's path no longer names the file it has open (a restore renamed another
   * file over it, or deleted it): called on each change of that state. Subscribing starts
   * the check, on an interval, off the request path.
   */
  onFileChange?(listener: (change: StoreFileChange) => void): void;
  close(): Promise<void>;
}

/**
 * `reopened`: the path names another file now, and the store reads that one (what any
 * cache remembers of the old file is stale); `missing`: nothing at the path, the store
 * still reads the file it has open; `unusable`: the file at the path cannot be opened.
 */
export interface StoreFileChange {
  readonly kind: 'reopened' | 'missing' | 'unusable';
  readonly message: string;
}

/** `list({ afterId })` named a key the store does not have. */
export class UnknownKeyError extends Error {
  override readonly name = 'UnknownKeyError';
  readonly id: string;
  constructor(id: string) {
    super(`no key with id ${id}`);
    this.id = id;
  }
}

/** A command that only reads or changes keys was pointed at a store that does not exist (see open-store.ts). */
export class StoreNotFoundError extends Error {
  override readonly name = 'StoreNotFoundError';
}

/**
 * A store written by another version of Keygate: an older schema (only `serve` and `keys
 * create` upgrade it) or a newer one (this Keygate cannot read it).
 */
export class StoreSchemaError extends Error {
  override readonly name = 'StoreSchemaError';
}
