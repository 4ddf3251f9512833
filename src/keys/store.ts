import type { KeyRecord, KeyType } from './key-record.ts';

/**
 * One page of `list()`: keys in listing order (creation time, then id), optionally of one
 * type or one referenceId. Paging is by key (keyset), not by offset, so the next page costs
 * the same however deep it is, and a key created meanwhile never shifts a page.
 */
export interface KeyListQuery {
  readonly type?: KeyType | undefined;
  readonly referenceId?: string | undefined;
  /** Only keys after this one in listing order; the store throws UnknownKeyError when no key has this id. */
  readonly afterId?: string | undefined;
  readonly limit: number;
}

/**
 * What every key store provides. Lookups are by SHA-256 hash only: no store ever sees a plaintext key.
 * `findByHash` may answer synchronously (SQLite) or with a promise (PostgreSQL); the cache handles both.
 */
export interface KeyStore {
  readonly kind: 'sqlite' | 'postgres';
  findByHash(keyHash: string): KeyRecord | undefined | Promise<KeyRecord | undefined>;
  insert(record: KeyRecord, keyHash: string): Promise<void>;
  /** At most `query.limit` keys; callers page with `afterId` (see KeyListQuery). */
  list(query: KeyListQuery): Promise<KeyRecord[]>;
  /** Returns false when no key has that id. */
  revoke(id: string): Promise<boolean>;
  /**
   * Throws (with the reason) when requests would fail: runs a real indexed lookup on the
   * keys table, as a request does, not a bare `SELECT 1`; used by /readyz.
   */
  ping(): Promise<void>;
  /** Called with key hashes revoked elsewhere, when the store can push them (PostgreSQL LISTEN/NOTIFY). */
  onRevoked?(listener: (keyHash: string) => void): void;
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
