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
  /** Throws when the store cannot answer; used by /readyz. */
  ping(): Promise<void>;
  /** Called with key hashes revoked elsewhere, when the store can push them (PostgreSQL LISTEN/NOTIFY). */
  onRevoked?(listener: (keyHash: string) => void): void;
  close(): Promise<void>;
}
