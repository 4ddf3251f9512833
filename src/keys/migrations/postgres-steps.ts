import { randomBytes } from 'node:crypto';
import type pg from 'pg';

/**
 * The PostgreSQL store's schema, one step per version, in order; postgres.ts runs the
 * steps a schema has not had, each once, in its own transaction. `q(name)` is a table or
 * index name qualified with the store's `?schema=`. A step is never edited once released:
 * a change is a new step at the end.
 */
export interface PostgresStep {
  readonly version: number;
  readonly name: string;
  up(client: pg.ClientBase, q: (name: string) => string): Promise<void>;
}

export const POSTGRES_STEPS: readonly PostgresStep[] = [
  {
    version: 1,
    name: 'keygate_keys (the schema before versions: a schema with this table and no version table is version 1)',
    async up(client, q) {
      await client.query(`
        CREATE TABLE IF NOT EXISTS ${q('keygate_keys')} (
          id           TEXT PRIMARY KEY,
          key_hash     TEXT NOT NULL,
          type         TEXT NOT NULL,
          reference_id TEXT,
          name         TEXT,
          roles        JSONB NOT NULL DEFAULT '[]'::jsonb,
          conditions   JSONB NOT NULL DEFAULT '{}'::jsonb,
          created_at   TIMESTAMPTZ NOT NULL,
          expires_at   TIMESTAMPTZ,
          revoked_at   TIMESTAMPTZ
        );
        CREATE UNIQUE INDEX IF NOT EXISTS keygate_keys_key_hash ON ${q('keygate_keys')} (key_hash);
        CREATE INDEX IF NOT EXISTS keygate_keys_listing ON ${q('keygate_keys')} (created_at, id);
        CREATE INDEX IF NOT EXISTS keygate_keys_reference ON ${q('keygate_keys')} (reference_id, created_at, id)`);
    },
  },
  {
    version: 2,
    name: 'key record v2 (origins, redirects, prefix, creator, usage), previous secrets in a rotation, the audit trail',
    async up(client, q) {
      const keys = q('keygate_keys');
      await client.query(`
        ALTER TABLE ${keys}
          ADD COLUMN description TEXT,
          ADD COLUMN allowed_origins JSONB NOT NULL DEFAULT '[]'::jsonb,
          ADD COLUMN allowed_redirects JSONB NOT NULL DEFAULT '[]'::jsonb,
          ADD COLUMN allow_reference_id BOOLEAN NOT NULL DEFAULT false,
          ADD COLUMN key_prefix TEXT,
          ADD COLUMN created_by TEXT NOT NULL DEFAULT 'cli',
          ADD COLUMN link_id TEXT,
          ADD COLUMN updated_at TIMESTAMPTZ,
          ADD COLUMN last_used_at TIMESTAMPTZ,
          ADD COLUMN expiry_noted_at TIMESTAMPTZ;
        UPDATE ${keys} SET key_prefix = CASE type WHEN 'scoped' THEN 'scoped_' ELSE 'api_' END, updated_at = created_at;
        CREATE INDEX keygate_keys_created_by ON ${keys} (created_by, created_at, id);
        CREATE INDEX keygate_keys_expiry_due ON ${keys} (expires_at) WHERE expires_at IS NOT NULL AND expiry_noted_at IS NULL AND revoked_at IS NULL;

        CREATE TABLE ${q('keygate_key_secrets')} (
          key_hash   TEXT PRIMARY KEY,
          key_id     TEXT NOT NULL,
          created_at TIMESTAMPTZ NOT NULL,
          expires_at TIMESTAMPTZ NOT NULL
        );
        CREATE INDEX keygate_key_secrets_key ON ${q('keygate_key_secrets')} (key_id);
        CREATE INDEX keygate_key_secrets_expiry ON ${q('keygate_key_secrets')} (expires_at);

        CREATE TABLE ${q('keygate_key_events')} (
          seq     BIGSERIAL PRIMARY KEY,
          key_id  TEXT NOT NULL,
          event   TEXT NOT NULL,
          actor   TEXT NOT NULL,
          at      TIMESTAMPTZ NOT NULL,
          changes JSONB NOT NULL DEFAULT '{}'::jsonb
        );
        CREATE INDEX keygate_key_events_key ON ${q('keygate_key_events')} (key_id, seq);
        CREATE UNIQUE INDEX keygate_key_events_expired ON ${q('keygate_key_events')} (key_id) WHERE event = 'expired';

        INSERT INTO ${q('keygate_key_events')} (key_id, event, actor, at, changes)
          SELECT id, 'created', 'cli', created_at, jsonb_build_object('type', type, 'migrated', 'from schema 1') FROM ${keys} ORDER BY created_at, id;
        INSERT INTO ${q('keygate_key_events')} (key_id, event, actor, at, changes)
          SELECT id, 'revoked', 'cli', revoked_at, jsonb_build_object('migrated', 'from schema 1') FROM ${keys} WHERE revoked_at IS NOT NULL ORDER BY revoked_at, id`);
    },
  },
  {
    version: 3,
    name: 'Connect link sessions (only the hash of a link token; single use by conditional update)',
    async up(client, q) {
      await client.query(`
        CREATE TABLE ${q('keygate_connect_links')} (
          id                   TEXT PRIMARY KEY,
          token_hash           TEXT NOT NULL UNIQUE,
          created_by           TEXT NOT NULL,
          reference_id         TEXT NOT NULL,
          client_name          TEXT,
          redirect_url         TEXT NOT NULL,
          state                TEXT,
          tags                 JSONB NOT NULL DEFAULT '[]'::jsonb,
          customer_info        JSONB,
          manufacturer_filters JSONB,
          allowed_origins      JSONB NOT NULL DEFAULT '[]'::jsonb,
          created_at           TIMESTAMPTZ NOT NULL,
          expires_at           TIMESTAMPTZ NOT NULL,
          session_hash         TEXT,
          step_hash            TEXT,
          linked_at            TIMESTAMPTZ,
          used_at              TIMESTAMPTZ,
          outcome              TEXT,
          key_id               TEXT
        );
        CREATE INDEX keygate_connect_links_expiry ON ${q('keygate_connect_links')} (expires_at)`);
    },
  },
  {
    version: 4,
    name: "Connect links' own secret (signs the session values Keygate issues, derives CSRF tokens); links open at the upgrade get one, their old cookies no longer count",
    async up(client, q) {
      const links = q('keygate_connect_links');
      await client.query(`ALTER TABLE ${links} ADD COLUMN session_key TEXT NOT NULL DEFAULT ''`);
      const { rows } = await client.query<{ id: string }>(`SELECT id FROM ${links}`);
      for (const row of rows) await client.query(`UPDATE ${links} SET session_key = $1 WHERE id = $2`, [randomBytes(32).toString('base64url'), row.id]);
      // Every link made from now on brings its own.
      await client.query(`ALTER TABLE ${links} ALTER COLUMN session_key DROP DEFAULT`);
    },
  },
  {
    version: 5,
    name: "Connect links remember the secret that made them (its hash): finishing needs it to still work, and the key minted ends no later than it; links open at the upgrade have none and are judged by their maker's key alone",
    async up(client, q) {
      await client.query(`ALTER TABLE ${q('keygate_connect_links')} ADD COLUMN maker_secret_hash TEXT`);
    },
  },
  {
    version: 6,
    name: 'Connect links remember whether their maker named the user: a chosen user is judged again at the finish whatever the id looks like; links open at the upgrade count as chosen unless their id has the generated form (as before)',
    async up(client, q) {
      const links = q('keygate_connect_links');
      await client.query(`ALTER TABLE ${links} ADD COLUMN reference_chosen BOOLEAN NOT NULL DEFAULT TRUE`);
      await client.query(`UPDATE ${links} SET reference_chosen = FALSE WHERE reference_id LIKE 'texture-generated:%'`);
      await client.query(`ALTER TABLE ${links} ALTER COLUMN reference_chosen DROP DEFAULT`);
    },
  },
];
