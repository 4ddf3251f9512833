import type pg from 'pg';
import { StoreNotFoundError, StoreSchemaError } from '../store.ts';
import { POSTGRES_STEPS } from './postgres-steps.ts';

/** The version this Keygate writes and reads: the last step's. */
export const POSTGRES_SCHEMA_VERSION = POSTGRES_STEPS[POSTGRES_STEPS.length - 1]!.version;
const VERSION_TABLE = 'keygate_schema_version';

export interface PostgresMigrateOptions {
  readonly create: boolean;
  /** The store's `?schema=` quoted as an identifier, or null for the connection's default. */
  readonly schema: string | null;
  /** Qualifies a table name with the schema. */
  readonly q: (name: string) => string;
  /** For messages: the schema-qualified keys table. */
  readonly label: string;
}

/** The schema's version: its version table's row, 1 for a schema with the keys table and no version table, 0 for none. */
async function readVersion(client: pg.ClientBase, q: (name: string) => string): Promise<number> {
  const found = await client.query<{ versions: boolean; keys: boolean }>('SELECT to_regclass($1) IS NOT NULL AS versions, to_regclass($2) IS NOT NULL AS keys', [q(VERSION_TABLE), q('keygate_keys')]);
  const row = found.rows[0]!;
  if (row.versions) {
    const v = await client.query<{ version: number }>(`SELECT version FROM ${q(VERSION_TABLE)}`);
    if (v.rows.length === 1) return v.rows[0]!.version;
  }
  return row.keys ? 1 : 0;
}

/**
 * Brings the schema to POSTGRES_SCHEMA_VERSION. Each step runs in a transaction holding
 * `pg_advisory_xact_lock` for this schema, and reads the version again under the lock, so
 * several processes starting at once run each step exactly once (the others wait, then
 * find it done). The version row is written in the same transaction as the step.
 */
export async function migratePostgres(client: pg.ClientBase, options: PostgresMigrateOptions): Promise<void> {
  const { q } = options;
  const found = await readVersion(client, q);
  if (found > POSTGRES_SCHEMA_VERSION) {
    throw new StoreSchemaError(`the database's ${options.label} has schema version ${found}, newer than this Keygate reads (${POSTGRES_SCHEMA_VERSION}): run the Keygate that wrote it`);
  }
  if (found === POSTGRES_SCHEMA_VERSION) return;
  if (!options.create) {
    if (found === 0) throw new StoreNotFoundError(`the database has no table ${options.label} (keygate serve or keygate keys create makes it)`);
    throw new StoreSchemaError(`the database's ${options.label} has schema version ${found}; this Keygate needs ${POSTGRES_SCHEMA_VERSION}: run keygate serve or keygate keys create to upgrade it`);
  }
  for (const step of POSTGRES_STEPS) {
    if (step.version <= found) continue;
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`keygate.schema:${options.schema ?? ''}`]);
      if (options.schema !== null) await client.query(`CREATE SCHEMA IF NOT EXISTS ${options.schema}`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${q(VERSION_TABLE)} (version INTEGER NOT NULL)`);
      if ((await readVersion(client, q)) < step.version) {
        await step.up(client, q);
        await client.query(`DELETE FROM ${q(VERSION_TABLE)}`);
        await client.query(`INSERT INTO ${q(VERSION_TABLE)} (version) VALUES ($1)`, [step.version]);
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }
}
