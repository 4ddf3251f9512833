import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { SqliteKeyStore } from '../../src/keys/sqlite-store.ts';

/**
 * Stores of many keys, made in one statement rather than through the CLI. Key i has id
 * key_<i, 16 digits>, a distinct (not secret) hash, type connect/scoped/scoped/server by
 * i % 4 (so i % 4 = 0 is a server key), referenceId user<i % 1000> for the scoped ones, and
 * a creation time one second per ten keys: ties in created_at are ordered by id.
 */
export const bulkKeyId = (i: number): string => `key_${String(i).padStart(16, '0')}`;

/** A SQLite store of `n` keys at `path` (a new file); about 4 s for 1,000,000. */
export async function bulkSqliteStore(path: string, n: number): Promise<void> {
  await new SqliteKeyStore(path).close(); // the store's own schema
  const db = new DatabaseSync(path);
  try {
    // The listing indexes are built once after the insert (as the schema defines them), and
    // the bulk write needs neither a journal nor fsync: if it fails, the test fails.
    db.exec('PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144; DROP INDEX IF EXISTS keys_listing; DROP INDEX IF EXISTS keys_reference;');
    db.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${n})
      INSERT INTO keys (id, key_hash, type, reference_id, name, roles, conditions, created_at, expires_at, revoked_at)
      SELECT printf('key_%016d', i), printf('%064x', i),
             CASE i % 4 WHEN 0 THEN 'server' WHEN 1 THEN 'connect' ELSE 'scoped' END,
             CASE WHEN i % 4 >= 2 THEN 'user' || (i % 1000) END, 'bulk ' || i, '[]', '{}',
             strftime('%Y-%m-%dT%H:%M:%fZ', 1700000000 + i / 10, 'unixepoch'), NULL, NULL
      FROM n`);
    db.exec('CREATE INDEX keys_listing ON keys (created_at, id); CREATE INDEX keys_reference ON keys (reference_id, created_at, id);');
    db.exec('PRAGMA journal_mode = WAL');
  } finally {
    db.close();
  }
  await new SqliteKeyStore(path).close();
}

/** The same keys in the PostgreSQL table `table` (schema-qualified, already created by the store). */
export async function bulkPostgresKeys(connectionString: string, table: string, n: number): Promise<void> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    await client.query(
      `INSERT INTO ${table} (id, key_hash, type, reference_id, name, created_at)
      SELECT 'key_' || lpad(i::text, 16, '0'), lpad(to_hex(i), 64, '0'),
             CASE i % 4 WHEN 0 THEN 'server' WHEN 1 THEN 'connect' ELSE 'scoped' END,
             CASE WHEN i % 4 >= 2 THEN 'user' || (i % 1000) END, 'bulk ' || i,
             timestamptz '2023-11-14 22:13:20Z' + (i / 10) * interval '1 second'
      FROM generate_series(1, $1::int) AS i`,
      [n],
    );
  } finally {
    await client.end();
  }
}
