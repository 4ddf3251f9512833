import { randomBytes } from 'node:crypto';
import type { DatabaseSync } from 'node:sqlite';

/**
 * The SQLite store's schema, one step per version, in order; sqlite.ts runs the steps a
 * file has not had, each once, in its own transaction. A step is never edited once
 * released: a change is a new step at the end.
 */
export interface SqliteStep {
  readonly version: number;
  readonly name: string;
  up(db: DatabaseSync): void;
}

export const SQLITE_STEPS: readonly SqliteStep[] = [
  {
    version: 1,
    name: 'keys table (the schema before versions: a file with this table and user_version 0 is version 1)',
    up(db) {
      db.exec(`
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
        );
        CREATE INDEX IF NOT EXISTS keys_listing ON keys (created_at, id);
        CREATE INDEX IF NOT EXISTS keys_reference ON keys (reference_id, created_at, id);`);
    },
  },
  {
    version: 2,
    name: 'key record v2 (origins, redirects, prefix, creator, usage), previous secrets in a rotation, the audit trail',
    up(db) {
      db.exec(`
        ALTER TABLE keys ADD COLUMN description TEXT;
        ALTER TABLE keys ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE keys ADD COLUMN allowed_redirects TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE keys ADD COLUMN allow_reference_id INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE keys ADD COLUMN key_prefix TEXT;
        ALTER TABLE keys ADD COLUMN created_by TEXT NOT NULL DEFAULT 'cli';
        ALTER TABLE keys ADD COLUMN link_id TEXT;
        ALTER TABLE keys ADD COLUMN updated_at TEXT;
        ALTER TABLE keys ADD COLUMN last_used_at TEXT;
        ALTER TABLE keys ADD COLUMN expiry_noted_at TEXT;
        UPDATE keys SET key_prefix = CASE type WHEN 'scoped' THEN 'scoped_' ELSE 'api_' END, updated_at = created_at;
        CREATE INDEX keys_created_by ON keys (created_by, created_at, id);
        CREATE INDEX keys_expiry_due ON keys (expires_at) WHERE expires_at IS NOT NULL AND expiry_noted_at IS NULL AND revoked_at IS NULL;

        CREATE TABLE key_secrets (
          key_hash   TEXT PRIMARY KEY,
          key_id     TEXT NOT NULL,
          created_at TEXT NOT NULL,
          expires_at TEXT NOT NULL
        );
        CREATE INDEX key_secrets_key ON key_secrets (key_id);
        CREATE INDEX key_secrets_expiry ON key_secrets (expires_at);

        CREATE TABLE key_events (
          seq     INTEGER PRIMARY KEY AUTOINCREMENT,
          key_id  TEXT NOT NULL,
          event   TEXT NOT NULL,
          actor   TEXT NOT NULL,
          at      TEXT NOT NULL,
          changes TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX key_events_key ON key_events (key_id, seq);
        CREATE UNIQUE INDEX key_events_expired ON key_events (key_id) WHERE event = 'expired';

        INSERT INTO key_events (key_id, event, actor, at, changes)
          SELECT id, 'created', 'cli', created_at, json_object('type', type, 'migrated', 'from schema 1') FROM keys ORDER BY created_at, id;
        INSERT INTO key_events (key_id, event, actor, at, changes)
          SELECT id, 'revoked', 'cli', revoked_at, json_object('migrated', 'from schema 1') FROM keys WHERE revoked_at IS NOT NULL ORDER BY revoked_at, id;`);
    },
  },
  {
    version: 3,
    name: 'Connect link sessions (only the hash of a link token; single use by conditional update)',
    up(db) {
      db.exec(`
        CREATE TABLE connect_links (
          id                   TEXT PRIMARY KEY,
          token_hash           TEXT NOT NULL UNIQUE,
          created_by           TEXT NOT NULL,
          reference_id         TEXT NOT NULL,
          client_name          TEXT,
          redirect_url         TEXT NOT NULL,
          state                TEXT,
          tags                 TEXT NOT NULL DEFAULT '[]',
          customer_info        TEXT,
          manufacturer_filters TEXT,
          allowed_origins      TEXT NOT NULL DEFAULT '[]',
          created_at           TEXT NOT NULL,
          expires_at           TEXT NOT NULL,
          session_hash         TEXT,
          step_hash            TEXT,
          linked_at            TEXT,
          used_at              TEXT,
          outcome              TEXT,
          key_id               TEXT
        );
        CREATE INDEX connect_links_expiry ON connect_links (expires_at);`);
    },
  },
  {
    version: 4,
    name: "Connect links' own secret (signs the session values Keygate issues, derives CSRF tokens); links open at the upgrade get one, their old cookies no longer count",
    up(db) {
      db.exec("ALTER TABLE connect_links ADD COLUMN session_key TEXT NOT NULL DEFAULT ''");
      const set = db.prepare('UPDATE connect_links SET session_key = ? WHERE id = ?');
      for (const row of db.prepare('SELECT id FROM connect_links').all() as Array<{ id: string }>) set.run(randomBytes(32).toString('base64url'), row.id);
    },
  },
  {
    version: 5,
    name: "Connect links remember the secret that made them (its hash): finishing needs it to still work, and the key minted ends no later than it; links open at the upgrade have none and are judged by their maker's key alone",
    up(db) {
      db.exec('ALTER TABLE connect_links ADD COLUMN maker_secret_hash TEXT');
    },
  },
  {
    version: 6,
    name: 'Connect links remember whether their maker named the user: a chosen user is judged again at the finish whatever the id looks like; links open at the upgrade count as chosen unless their id has the generated form (as before)',
    up(db) {
      db.exec('ALTER TABLE connect_links ADD COLUMN reference_chosen INTEGER NOT NULL DEFAULT 1');
      db.exec("UPDATE connect_links SET reference_chosen = 0 WHERE reference_id LIKE 'texture-generated:%'");
    },
  },
];
