import type { DatabaseSync } from 'node:sqlite';
import { StoreNotFoundError, StoreSchemaError } from '../store.ts';
import { SQLITE_STEPS } from './sqlite-steps.ts';

/** The version this Keygate writes and reads: the last step's. */
export const SQLITE_SCHEMA_VERSION = SQLITE_STEPS[SQLITE_STEPS.length - 1]!.version;

/** `PRAGMA user_version`, or 1 for a file of the schema before versions (it has the keys table and version 0). */
function sqliteVersion(db: DatabaseSync): number {
  const { user_version: version } = db.prepare('PRAGMA user_version').get() as { user_version: number };
  if (version !== 0) return version;
  return db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'keys'").get() === undefined ? 0 : 1;
}

export interface MigrateOptions {
  /** serve and `keys create` create and upgrade a store; other commands only read one of this version. */
  readonly create: boolean;
  /** Runs a step again while SQLite answers busy (retryWhileBusy, ../sqlite-busy.ts). */
  readonly retry: (step: () => void) => void;
  readonly label: string;
}

/**
 * Brings a SQLite file to SQLITE_SCHEMA_VERSION. Each step runs in a `BEGIN IMMEDIATE`
 * transaction that first takes the write lock and then reads the version again, so
 * several processes opening one file at once run each step exactly once (the others wait
 * on the lock, then find it done). `PRAGMA user_version` is written in the same
 * transaction, so a step is either done and counted, or neither.
 */
export function migrateSqlite(db: DatabaseSync, options: MigrateOptions): void {
  const found = sqliteVersion(db);
  if (found > SQLITE_SCHEMA_VERSION) {
    throw new StoreSchemaError(`key store ${options.label} has schema version ${found}, newer than this Keygate reads (${SQLITE_SCHEMA_VERSION}): run the Keygate that wrote it`);
  }
  if (found === SQLITE_SCHEMA_VERSION) return;
  if (!options.create) {
    if (found === 0) throw new StoreNotFoundError(`key store ${options.label} has no keys table (keygate serve or keygate keys create makes it)`);
    throw new StoreSchemaError(`key store ${options.label} has schema version ${found}; this Keygate needs ${SQLITE_SCHEMA_VERSION}: run keygate serve or keygate keys create to upgrade it`);
  }
  for (const step of SQLITE_STEPS) {
    if (step.version <= found) continue;
    options.retry(() => {
      db.exec('BEGIN IMMEDIATE');
      try {
        if (sqliteVersion(db) < step.version) {
          step.up(db);
          db.exec(`PRAGMA user_version = ${step.version}`);
        }
        db.exec('COMMIT');
      } catch (err) {
        if (db.isTransaction) db.exec('ROLLBACK');
        throw err;
      }
    });
  }
}
