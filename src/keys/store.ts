import type { KeyRecord, NewKey } from './key-record.ts';

/**
 * What every key store provides. Lookups are by SHA-256 hash only: no store ever sees a plaintext key.
 * `findByHash` may answer synchronously (SQLite) or with a promise (PostgreSQL); the cache handles both.
 */
export interface KeyStore {
  readonly kind: 'sqlite' | 'postgres';
  findByHash(keyHash: string): KeyRecord | undefined | Promise<KeyRecord | undefined>;
  insert(record: KeyRecord, keyHash: string): Promise<void>;
  list(): Promise<KeyRecord[]>;
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
