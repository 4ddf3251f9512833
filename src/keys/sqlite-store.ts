import { statSync } from 'node:fs';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { KeyRecord, KeyType } from './key-record.ts';
import { UnknownKeyError, type KeyListQuery, type KeyStore, type StoreFileChange } from './store.ts';

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
);
CREATE INDEX IF NOT EXISTS keys_listing ON keys (created_at, id);
CREATE INDEX IF NOT EXISTS keys_reference ON keys (reference_id, created_at, id);`;

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

/** SQLite's SQLITE_BUSY, in the low byte of every extended busy code (BUSY_SNAPSHOT, BUSY_RECOVERY, …). */
const SQLITE_BUSY = 5;
const BUSY_RETRY_MS = 5000;

function isBusy(err: unknown): boolean {
  const code = (err as { errcode?: unknown }).errcode;
  return typeof code === 'number' && (code & 0xff) === SQLITE_BUSY;
}

/**
 * Runs `step`, again while SQLite answers "database is locked", for up to 5 s. The busy
 * timeout covers waiting for a lock, but not every busy answer: SQLite returns some at once
 * because waiting could deadlock. The one that matters here is opening a brand-new file
 * from several processes at once (a CLI and a sidecar, or `keys create` run in parallel):
 * each runs `CREATE TABLE IF NOT EXISTS` as a read that turns into a write, and when another
 * process created the table in between, the upgrade fails with SQLITE_BUSY_SNAPSHOT. Run
 * again, the statement sees the table and does nothing. Only the store's opening
 * statements retry; they are idempotent, and opening is not on a request's path.
 */
export function retryWhileBusy(step: () => void, retryMs = BUSY_RETRY_MS): void {
  const deadline = Date.now() + retryMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let attempt = 1; ; attempt++) {
    try {
      step();
      return;
    } catch (err) {
      if (!isBusy(err) || Date.now() >= deadline) throw err;
      Atomics.wait(pause, 0, 0, Math.min(5 * attempt, 50)); // a synchronous sleep: the constructor is synchronous
    }
  }
}

/** How often a watching store checks that its path still names the file it has open. */
export const FILE_CHECK_MS = 500;
/** A hash no key has (hashKey() is lower-case hex): the readiness lookup in an empty store. */
const PROBE_HASH = '0'.repeat(64);

/** The statements a store prepares once per connection. */
function statements(db: DatabaseSync): Record<'byHash' | 'newest' | 'begin' | 'commit', StatementSync> {
  return {
    byHash: db.prepare(`SELECT ${COLUMNS} FROM keys WHERE key_hash = ?`),
    newest: db.prepare('SELECT key_hash FROM keys ORDER BY rowid DESC LIMIT 1'),
    begin: db.prepare('BEGIN'),
    commit: db.prepare('COMMIT'),
  };
}

/** Which file a path names: device and inode, or null when nothing is there. */
function identityOf(path: string): string | null {
  const st = statSync(path, { throwIfNoEntry: false });
  return st === undefined ? null : `${st.dev}:${st.ino}`;
}

/**
 * Embedded store: one SQLite file in WAL mode, so the CLI (another process) can create
 * and revoke keys while a sidecar reads. node:sqlite is synchronous; a lookup is an index
 * probe and happens only on a cache miss.
 *
 * Lookups share one read snapshot per turn of the event loop. A lookup on its own is an
 * implicit transaction, and in WAL mode starting and ending one (taking and dropping the
 * shared-memory read lock: two fcntl calls, and the WAL-index check) is about 90 % of its
 * cost: 2.2 µs measured against 0.18 µs inside an open transaction. The first lookup of a
 * turn opens the snapshot and a setImmediate ends it, so in a flood of unknown keys
 * (every one a store query) the requests of one turn share that cost. A key committed by
 * another process is seen from the next turn (well under a millisecond); the snapshot is
 * read-only and never held while the loop waits, so it delays no writer or checkpoint.
 */
export class SqliteKeyStore implements KeyStore {
  readonly kind = 'sqlite' as const;
  readonly #path: string;
  // Not readonly: a store that watches its path reopens when the path names another file.
  #db: DatabaseSync;
  #byHash: StatementSync;
  #newest: StatementSync;
  #begin: StatementSync;
  #commit: StatementSync;
  /** The file this store has open (device:inode), as found right after opening it. */
  #identity: string | null = null;
  /** Why the path does not name a usable store right now (reported by ping, so by /readyz). */
  #fileProblem: StoreFileChange | null = null;
  #watch: NodeJS.Timeout | null = null;
  readonly #fileListeners = new Set<(change: StoreFileChange) => void>();
  #snapshot = false;
  readonly #endSnapshot = (): void => {
    if (!this.#snapshot) return;
    this.#snapshot = false;
    try {
      if (this.#db.isOpen && this.#db.isTransaction) this.#commit.run();
    } catch {
      // Ending a read-only transaction takes no lock; should it fail all the same, roll
      // back so the next lookup can begin one (or report the store's failure as a 503).
      try {
        this.#db.exec('ROLLBACK');
      } catch {
        /* the next lookup's BEGIN reports it */
      }
    }
  };

  constructor(path: string) {
    this.#path = path;
    this.#db = SqliteKeyStore.#openDatabase(path, BUSY_RETRY_MS);
    ({ byHash: this.#byHash, newest: this.#newest, begin: this.#begin, commit: this.#commit } = statements(this.#db));
    if (path !== ':memory:') this.#identity = identityOf(path);
  }

  /**
   * Opens the file and runs the opening statements, retrying them while SQLite answers
   * busy for up to `busyRetryMs` (see retryWhileBusy). The read at the end opens the WAL
   * and its index before the caller records which file it has open. It reads the schema
   * only: a file whose keys table is damaged still opens, and ping (readiness) says what
   * is wrong with it.
   */
  static #openDatabase(path: string, busyRetryMs: number): DatabaseSync {
    // The busy timeout must be in force before the first statement: switching a fresh
    // file to WAL takes a write lock, and a CLI and a sidecar (or two workers) opening
    // the same new file at once would otherwise fail with "database is locked".
    const db = new DatabaseSync(path, { timeout: Math.min(busyRetryMs, 5000) });
    try {
      retryWhileBusy(() => db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;'), busyRetryMs);
      retryWhileBusy(() => db.exec(SCHEMA), busyRetryMs);
      db.exec('PRAGMA busy_timeout = 5000');
      db.prepare('SELECT count(*) FROM sqlite_schema').get();
    } catch (err) {
      db.close();
      throw err;
    }
    return db;
  }

  #openSnapshot(): void {
    if (this.#snapshot) return;
    this.#begin.run();
    this.#snapshot = true;
    setImmediate(this.#endSnapshot);
  }

  findByHash(keyHash: string): KeyRecord | undefined {
    if (!this.#snapshot) this.#openSnapshot();
    const row = this.#byHash.get(keyHash) as Row | undefined;
    return row === undefined ? undefined : rowToRecord(row);
  }

  async insert(record: KeyRecord, keyHash: string): Promise<void> {
    // A write inside the turn's read snapshot would be committed only when the turn ends
    // (and could fail on a stale snapshot): end the snapshot first.
    this.#endSnapshot();
    this.#db
      .prepare(`INSERT INTO keys (id, key_hash, type, reference_id, name, roles, conditions, created_at, expires_at, revoked_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(record.id, keyHash, record.type, record.referenceId, record.name, JSON.stringify(record.roles),
        JSON.stringify(record.conditions), record.createdAt, record.expiresAt, record.revokedAt);
  }

  /** One page, in the order of the keys_listing index; `afterId` continues from a key (keyset paging). */
  async list(query: KeyListQuery): Promise<KeyRecord[]> {
    const where: string[] = [];
    const params: Array<string | number> = [];
    if (query.type !== undefined) {
      where.push('type = ?');
      params.push(query.type);
    }
    if (query.referenceId !== undefined) {
      where.push('reference_id = ?');
      params.push(query.referenceId);
    }
    if (query.afterId !== undefined) {
      if (this.#db.prepare('SELECT 1 FROM keys WHERE id = ?').get(query.afterId) === undefined) throw new UnknownKeyError(query.afterId);
      where.push('(created_at, id) > (SELECT created_at, id FROM keys WHERE id = ?)');
      params.push(query.afterId);
    }
    params.push(query.limit);
    const sql = `SELECT ${COLUMNS} FROM keys${where.length === 0 ? '' : ' WHERE ' + where.join(' AND ')} ORDER BY created_at, id LIMIT ?`;
    return (this.#db.prepare(sql).all(...params) as unknown as Row[]).map(rowToRecord);
  }

  async revoke(id: string): Promise<boolean> {
    this.#endSnapshot();
    const result = this.#db
      .prepare('UPDATE keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?')
      .run(new Date().toISOString(), id);
    return Number(result.changes) > 0;
  }

  /**
   * A lookup as a request makes it: the newest key's hash (the table's last page) read
   * back through the lookup statement (the key_hash index, the row, its decoding), in the
   * same read snapshot. `SELECT 1` reads no page of the file: a store whose keys table is
   * corrupt answered it while every lookup failed.
   */
  async ping(): Promise<void> {
    if (this.#fileProblem !== null) throw new Error(this.#fileProblem.message);
    this.#openSnapshot();
    const newest = this.#newest.get() as { key_hash: string } | undefined;
    const found = this.findByHash(newest?.key_hash ?? PROBE_HASH);
    if (newest !== undefined && found === undefined) throw new Error('the newest key cannot be read back by its hash: the key_hash index does not match the table');
  }

  onFileChange(listener: (change: StoreFileChange) => void): void {
    this.#fileListeners.add(listener);
    if (this.#watch !== null || this.#path === ':memory:' || !this.#db.isOpen) return;
    this.#watch = setInterval(() => this.checkFile(), FILE_CHECK_MS);
    this.#watch.unref();
  }

  /**
   * Does the path still name the files this store has open? A restore that renames a copy
   * over the path (`cp keygate.db new && mv new keygate.db`), or deletes the files and puts
   * a backup back, leaves this connection on the old inode: SQLite goes on reading it, so
   * keys created and revoked in the new file were never seen. Compared by device and
   * inode: one stat call, on a timer (onFileChange), never per request; public for tests.
   */
  checkFile(): void {
    if (!this.#db.isOpen || this.#identity === null) return;
    const now = identityOf(this.#path);
    if (now === null) {
      this.#report({
        kind: 'missing',
        message: `sqlite file ${this.#path} no longer exists (deleted or moved away): lookups still read the file opened before; restore it at that path`,
      });
      return;
    }
    if (now === this.#identity) {
      if (this.#fileProblem !== null) this.#reopen();
      return;
    }
    this.#reopen();
  }

  /**
   * Opens the file now at the path, then closes the old connection: in that order, the
   * new files are never without a connection of this process while the old one closes
   * (and SQLite does not checkpoint on close a file that was moved away), and tests check
   * that keys written to the new file before the reopen survive it. Opening does not wait
   * on a busy file (it would stall the event loop); the next check tries again.
   */
  #reopen(): void {
    let db: DatabaseSync;
    let identity: string | null;
    try {
      const before = identityOf(this.#path);
      db = SqliteKeyStore.#openDatabase(this.#path, 0);
      identity = identityOf(this.#path);
      if (before === null || before !== identity) {
        db.close();
        return; // replaced again while opening: the next check opens whatever is there then
      }
    } catch (err) {
      if (isBusy(err)) return; // another process holds it for a moment: the next check tries again
      this.#report({ kind: 'unusable', message: `sqlite file ${this.#path} was replaced and the new file cannot be opened: ${(err as Error).message}` });
      return;
    }
    this.#endSnapshot();
    const old = this.#db;
    this.#db = db;
    ({ byHash: this.#byHash, newest: this.#newest, begin: this.#begin, commit: this.#commit } = statements(db));
    this.#identity = identity;
    this.#fileProblem = null;
    old.close();
    this.#emit({ kind: 'reopened', message: `sqlite file ${this.#path} names another file now (replaced or restored): reopened it` });
  }

  /** Records a problem and tells the listeners once per change of it. */
  #report(problem: StoreFileChange): void {
    const same = this.#fileProblem?.kind === problem.kind;
    this.#fileProblem = problem;
    if (!same) this.#emit(problem);
  }

  #emit(change: StoreFileChange): void {
    for (const listener of this.#fileListeners) {
      try {
        listener(change);
      } catch {
        // A listener's failure must not stop the others or the check.
      }
    }
  }

  async close(): Promise<void> {
    if (this.#watch !== null) clearInterval(this.#watch);
    this.#watch = null;
    this.#fileListeners.clear();
    this.#endSnapshot();
    if (this.#db.isOpen) this.#db.close();
  }
}
