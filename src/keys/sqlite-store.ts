import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { KeyRecord, KeyType } from './key-record.ts';
import type { KeyStore } from './store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS keys (
  id           TEXT PRIMARY KEY,
  key_hash     TEXT NOT NULL UNIQUE,
  type         TEXT NOT NULL,
  reference_id TEXT,
  name         TEXT,
  roles        TEXT NOT NULL DEFAULT '[]',
  conditions   TEXT NOT NULL DEFAULT '{}',
  created_at   TEXT NOT NULL,
  expires_at   TEXT,
  revoked_at   TEXT
);`;

interface Row {
  id: string;
  type: string;
  reference_id: string | null;
  name: string | null;
  roles: string;
  conditions: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
}

export function rowToRecord(row: Row): KeyRecord {
  return {
    id: row.id,
    type: row.type as KeyType,
    referenceId: row.reference_id,
    name: row.name,
    roles: JSON.parse(row.roles) as string[],
    conditions: JSON.parse(row.conditions) as Record<string, string[]>,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
  };
}

const COLUMNS = 'id, type, reference_id, name, roles, conditions, created_at, expires_at, revoked_at';

/**
 * Embedded store: one SQLite file in WAL mode, so the CLI (another process) can create
 * and revoke keys while a sidecar reads. node:sqlite is synchronous; a lookup is a
 * primary-key probe of a few microseconds and happens only on a cache miss.
 */
export class SqliteKeyStore implements KeyStore {
  readonly kind = 'sqlite' as const;
  readonly #db: DatabaseSync;
  readonly #byHash: StatementSync;

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    // The busy timeout must be in force before the first statement: switching a fresh
    // file to WAL takes a write lock, and a CLI and a sidecar (or two workers) opening
    // the same new file at once would otherwise fail with "database is locked".
    this.#db = new DatabaseSync(path, { timeout: 5000 });
    this.#db.exec('PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;');
    this.#db.exec(SCHEMA);
    this.#byHash = this.#db.prepare(`SELECT ${COLUMNS} FROM keys WHERE key_hash = ?`);
  }

  findByHash(keyHash: string): KeyRecord | undefined {
    const row = this.#byHash.get(keyHash) as Row | undefined;
    return row === undefined ? undefined : rowToRecord(row);
  }

  async insert(record: KeyRecord, keyHash: string): Promise<void> {
    this.#db
      .prepare(`INSERT INTO keys (id, key_hash, type, reference_id, name, roles, conditions, created_at, expires_at, revoked_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(record.id, keyHash, record.type, record.referenceId, record.name, JSON.stringify(record.roles),
        JSON.stringify(record.conditions), record.createdAt, record.expiresAt, record.revokedAt);
  }

  async list(): Promise<KeyRecord[]> {
    return (this.#db.prepare(`SELECT ${COLUMNS} FROM keys ORDER BY created_at, id`).all() as unknown as Row[]).map(rowToRecord);
  }

  async revoke(id: string): Promise<boolean> {
    const result = this.#db
      .prepare('UPDATE keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?')
      .run(new Date().toISOString(), id);
    return Number(result.changes) > 0;
  }

  async ping(): Promise<void> {
    this.#db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
  }
}
