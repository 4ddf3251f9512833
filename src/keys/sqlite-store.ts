import { statSync } from 'node:fs';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { applyChanges, createdChanges } from './key-diff.ts';
import { EXPIRY_ACTOR, type FieldChange, type KeyEvent } from './key-event.ts';
import type { FoundKey, KeyRecord } from './key-record.ts';
import { migrateSqlite } from './migrations/sqlite.ts';
import { BUSY_RETRY_MS, BUSY_TIMEOUT_MS, isBusy, retryWhileBusy, writeWhenFree } from './sqlite-busy.ts';
import { CHANGE_CHECK_MS, type FeedStatements, feedStatements, SqliteChangeFeed } from './sqlite-feed.ts';
import { COLUMNS, type EventRow, filterSql, type KeyRow, QUALIFIED_COLUMNS, recordValues, rowToEvent, rowToFound, rowToRecord } from './sqlite-rows.ts';
import {
  type KeyChange,
  type KeyChanges,
  type KeyFilter,
  type KeyListQuery,
  type KeyStore,
  type KeyUse,
  LAST_USED_STEP_MS,
  type Rotation,
  type StoreFileChange,
  UnknownKeyError,
  type WriteGuard,
} from './store.ts';

/** The most of the file mapped into memory for reads: address space; the pages a lookup touches are the OS page cache's (file-backed, shared, counted in RSS as such). */
const MMAP_BYTES = 1024 * 2 ** 20;

export { retryWhileBusy } from './sqlite-busy.ts';

/** How often a watching store checks that its path still names the file it has open. */
const FILE_CHECK_MS = 500;
/** A hash no key has (hashKey() is lower-case hex): the readiness lookup in an empty store. */
const PROBE_HASH = '0'.repeat(64);

const DUE = 'expires_at IS NOT NULL AND expiry_noted_at IS NULL AND revoked_at IS NULL AND expires_at <= ?';

type Names = 'byHash' | 'byId' | 'newest' | 'begin' | 'commit' | 'insertEvent';

/** The statements a store prepares once per connection. */
function statements(db: DatabaseSync): Record<Names, StatementSync> {
  return {
    // The current secret is the row's key_hash; previous ones, in a rotation's grace, are in key_secrets.
    byHash: db.prepare(`SELECT ${COLUMNS}, NULL AS secret_expires_at FROM keys WHERE key_hash = ?1
      UNION ALL SELECT ${QUALIFIED_COLUMNS}, s.expires_at FROM key_secrets s JOIN keys k ON k.id = s.key_id WHERE s.key_hash = ?1 LIMIT 1`),
    byId: db.prepare(`SELECT ${COLUMNS}, key_hash FROM keys WHERE id = ?`),
    newest: db.prepare('SELECT key_hash FROM keys ORDER BY rowid DESC LIMIT 1'),
    begin: db.prepare('BEGIN'),
    commit: db.prepare('COMMIT'),
    insertEvent: db.prepare('INSERT INTO key_events (key_id, event, actor, at, changes) VALUES (?, ?, ?, ?, ?)'),
  };
}

/** Which file a path names: device and inode, or null when nothing is there. */
function identityOf(path: string): string | null {
  const st = statSync(path, { throwIfNoEntry: false });
  return st === undefined ? null : `${st.dev}:${st.ino}`;
}

export interface SqliteStoreOptions {
  /** Create or upgrade the schema (serve, `keys create`; the default); false: refuse a file without the current schema. */
  readonly create?: boolean;
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
 *
 * Writes take the write lock (`BEGIN IMMEDIATE`) and record their audit event in the same
 * transaction.
 */
export class SqliteKeyStore implements KeyStore {
  readonly kind = 'sqlite' as const;
  readonly #path: string;
  readonly #create: boolean;
  // Not readonly: a store that watches its path reopens when the path names another file.
  #db: DatabaseSync;
  #s: Record<Names, StatementSync>;
  /** The file this store has open (device:inode), as found right after opening it. */
  #identity: string | null = null;
  /** Why the path does not name a usable store right now (reported by ping, so by /readyz). */
  #fileProblem: StoreFileChange | null = null;
  #watch: NodeJS.Timeout | null = null;
  readonly #fileListeners = new Set<(change: StoreFileChange) => void>();
  #feedTimer: NodeJS.Timeout | null = null;
  #feedStatements: FeedStatements | null = null;
  readonly #feed = new SqliteChangeFeed(
    () => (this.#feedStatements ??= feedStatements(this.#db)),
    () => this.#endSnapshot(),
    (c) => this.#emit(c),
  );
  readonly #changeListeners = new Set<(change: KeyChange) => void>();
  #snapshot = false;
  readonly #endSnapshot = (): void => {
    if (!this.#snapshot) return;
    this.#snapshot = false;
    try {
      if (this.#db.isOpen && this.#db.isTransaction) this.#s.commit.run();
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

  constructor(path: string, options: SqliteStoreOptions = {}) {
    this.#path = path;
    this.#create = options.create ?? true;
    this.#db = SqliteKeyStore.#openDatabase(path, BUSY_RETRY_MS, this.#create);
    this.#s = statements(this.#db);
    if (path !== ':memory:') this.#identity = identityOf(path);
  }

  /**
   * Opens the file, switches it to WAL and brings its schema to this version (migrations/),
   * retrying while SQLite answers busy for up to `busyRetryMs` (see retryWhileBusy). The
   * read at the end opens the WAL and its index before the caller records which file it
   * has open. It reads the schema only: a file whose keys table is damaged still opens,
   * and ping (readiness) says what is wrong with it.
   */
  static #openDatabase(path: string, busyRetryMs: number, create: boolean): DatabaseSync {
    // The busy timeout must be in force before the first statement: switching a fresh
    // file to WAL takes a write lock, and a CLI and a sidecar (or two workers) opening
    // the same new file at once would otherwise fail with "database is locked".
    const db = new DatabaseSync(path, { timeout: Math.min(busyRetryMs, 5000) });
    try {
      retryWhileBusy(() => db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;'), busyRetryMs);
      migrateSqlite(db, { create, retry: (step) => retryWhileBusy(step, busyRetryMs), label: `sqlite:${path}` });
      db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
      // Reads through a memory map: a lookup that misses SQLite's own page cache (2 MB by
      // default, a few thousand of a million keys' index pages) reads the OS page cache
      // directly instead of one pread per page. With 1,000,000 keys the 401 flood (every key
      // new, every lookup a miss) ran at 0.76x its speed over 1,000 keys without it.
      db.exec(`PRAGMA mmap_size = ${MMAP_BYTES}`);
      db.prepare('SELECT count(*) FROM sqlite_schema').get();
    } catch (err) {
      db.close();
      throw err;
    }
    return db;
  }

  #openSnapshot(): void {
    if (this.#snapshot) return;
    this.#s.begin.run();
    this.#snapshot = true;
    setImmediate(this.#endSnapshot);
  }

  findByHash(keyHash: string): FoundKey | undefined {
    if (!this.#snapshot) this.#openSnapshot();
    const row = this.#s.byHash.get(keyHash) as KeyRow | undefined;
    return row === undefined ? undefined : rowToFound(row);
  }

  /**
   * Runs `write` in a write transaction. A write inside the turn's read snapshot would be
   * committed only when the turn ends (and could fail on a stale snapshot): the snapshot
   * ends first.
   */
  #write<T>(write: () => T): Promise<T> {
    return writeWhenFree(this.#db, () => {
      // Again on every attempt: a lookup between two attempts opens a snapshot.
      this.#endSnapshot();
      this.#db.exec('BEGIN IMMEDIATE');
      try {
        const result = write();
        this.#db.exec('COMMIT');
        return result;
      } catch (err) {
        if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  /** Runs `guard` inside the write, with the acting key's row as it is now. */
  #guard(guard: WriteGuard | undefined, target: KeyRecord): void {
    if (guard === undefined) return;
    const row = this.#s.byId.get(guard.actorId) as KeyRow | undefined;
    guard.check(row === undefined ? undefined : rowToRecord(row), target);
  }

  #event(id: string, event: KeyEvent['event'], actor: string, at: string, changes: Record<string, unknown>): void {
    this.#s.insertEvent.run(id, event, actor, at, JSON.stringify(changes));
  }

  async insert(record: KeyRecord, keyHash: string, guard?: WriteGuard): Promise<void> {
    await this.#write(() => {
      this.#guard(guard, record);
      this.#db.prepare(`INSERT INTO keys (${COLUMNS}, key_hash) VALUES (${'?, '.repeat(18)}?)`).run(...recordValues(record), keyHash);
      this.#event(record.id, 'created', record.createdBy, record.createdAt, createdChanges(record));
    });
  }

  async get(id: string): Promise<KeyRecord | undefined> {
    this.#endSnapshot();
    const row = this.#s.byId.get(id) as KeyRow | undefined;
    return row === undefined ? undefined : rowToRecord(row);
  }

  /** One page, in the order of the keys_listing index; `afterId` continues from a key (keyset paging), `offset` skips. */
  async list(query: KeyListQuery): Promise<KeyRecord[]> {
    this.#endSnapshot();
    const params: Array<string | number> = [];
    const where = [filterSql(query, params)].filter((w) => w !== '');
    if (query.afterId !== undefined) {
      if (this.#db.prepare('SELECT 1 FROM keys WHERE id = ?').get(query.afterId) === undefined) throw new UnknownKeyError(query.afterId);
      where.push('(created_at, id) > (SELECT created_at, id FROM keys WHERE id = ?)');
      params.push(query.afterId);
    }
    params.push(query.limit, query.offset ?? 0);
    const sql = `SELECT ${COLUMNS} FROM keys${where.length === 0 ? '' : ' WHERE ' + where.join(' AND ')} ORDER BY created_at, id LIMIT ? OFFSET ?`;
    return (this.#db.prepare(sql).all(...params) as unknown as KeyRow[]).map(rowToRecord);
  }

  async count(filter: KeyFilter): Promise<number> {
    this.#endSnapshot();
    const params: Array<string | number> = [];
    const where = filterSql(filter, params);
    const row = this.#db.prepare(`SELECT count(*) AS n FROM keys${where === '' ? '' : ' WHERE ' + where}`).get(...params) as { n: number };
    return Number(row.n);
  }

  async update(id: string, changes: KeyChanges, actor: string, guard?: WriteGuard): Promise<{ record: KeyRecord; changed: Record<string, FieldChange> } | undefined> {
    const updated = await this.#write(() => {
      const row = this.#s.byId.get(id) as KeyRow | undefined;
      if (row === undefined) return undefined;
      const at = new Date().toISOString();
      const { next, changed } = applyChanges(rowToRecord(row), changes, at);
      this.#guard(guard, next);
      if (Object.keys(changed).length === 0) return { record: next, changed };
      this.#db
        .prepare(`UPDATE keys SET name = ?, description = ?, roles = ?, conditions = ?, allowed_origins = ?, allowed_redirects = ?, allow_reference_id = ?,
                  expires_at = ?, updated_at = ?, expiry_noted_at = CASE WHEN expires_at IS ? THEN expiry_noted_at END WHERE id = ?`)
        .run(
          next.name,
          next.description,
          JSON.stringify(next.roles),
          JSON.stringify(next.conditions),
          JSON.stringify(next.allowedOrigins),
          JSON.stringify(next.allowedRedirects),
          next.allowReferenceId ? 1 : 0,
          next.expiresAt,
          next.updatedAt,
          next.expiresAt,
          id,
        );
      this.#event(id, 'updated', actor, at, changed);
      return { record: next, changed };
    });
    if (updated !== undefined && Object.keys(updated.changed).length > 0) this.#emit({ kind: 'keys', ids: [id] });
    return updated;
  }

  async rotate(id: string, rotation: Rotation, actor: string, guard?: WriteGuard): Promise<KeyRecord | undefined> {
    const rotated = await this.#write(() => {
      const row = this.#s.byId.get(id) as (KeyRow & { key_hash: string }) | undefined;
      if (row === undefined) return undefined;
      const at = new Date().toISOString();
      const before = rowToRecord(row);
      this.#guard(guard, before);
      if (rotation.previousExpiresAt === null) {
        this.#db.prepare('DELETE FROM key_secrets WHERE key_id = ?').run(id);
      } else {
        // Secrets from earlier rotations never outlive the new grace period.
        this.#db.prepare('UPDATE key_secrets SET expires_at = MIN(expires_at, ?) WHERE key_id = ?').run(rotation.previousExpiresAt, id);
        this.#db.prepare('INSERT INTO key_secrets (key_hash, key_id, created_at, expires_at) VALUES (?, ?, ?, ?)').run(row.key_hash, id, at, rotation.previousExpiresAt);
      }
      this.#db.prepare('UPDATE keys SET key_hash = ?, key_prefix = ?, updated_at = ? WHERE id = ?').run(rotation.keyHash, rotation.keyPrefix, at, id);
      this.#event(id, 'rotated', actor, at, { keyPrefix: { from: before.keyPrefix, to: rotation.keyPrefix }, previousSecretExpiresAt: rotation.previousExpiresAt });
      return { ...before, keyPrefix: rotation.keyPrefix, updatedAt: at };
    });
    if (rotated !== undefined) this.#emit({ kind: 'keys', ids: [id] });
    return rotated;
  }

  async revoke(id: string, actor = 'cli'): Promise<boolean> {
    const found = await this.#write(() => {
      const row = this.#db.prepare('SELECT revoked_at FROM keys WHERE id = ?').get(id) as { revoked_at: string | null } | undefined;
      if (row === undefined) return false;
      if (row.revoked_at !== null) return true; // the first revocation's time and event stand
      const at = new Date().toISOString();
      this.#db.prepare('UPDATE keys SET revoked_at = ?, updated_at = ? WHERE id = ?').run(at, at, id);
      this.#db.prepare('DELETE FROM key_secrets WHERE key_id = ?').run(id);
      this.#event(id, 'revoked', actor, at, {});
      return true;
    });
    if (found) this.#emit({ kind: 'keys', ids: [id] });
    return found;
  }

  async events(id: string, page: { readonly offset: number; readonly limit: number }): Promise<KeyEvent[]> {
    this.#endSnapshot();
    const rows = this.#db.prepare('SELECT seq, key_id, event, actor, at, changes FROM key_events WHERE key_id = ? ORDER BY seq LIMIT ? OFFSET ?').all(id, page.limit, page.offset);
    return (rows as unknown as EventRow[]).map(rowToEvent);
  }

  async countEvents(id: string): Promise<number> {
    this.#endSnapshot();
    return Number((this.#db.prepare('SELECT count(*) AS n FROM key_events WHERE key_id = ?').get(id) as { n: number }).n);
  }

  async recordExpiries(now: Date): Promise<KeyEvent[]> {
    this.#endSnapshot();
    const at = now.toISOString();
    // Read first: the usual answer is "nothing due", and it needs no write lock.
    const due = this.#db.prepare(`SELECT 1 FROM keys WHERE ${DUE} LIMIT 1`).get(at) !== undefined;
    const stale = this.#db.prepare('SELECT 1 FROM key_secrets WHERE expires_at <= ? LIMIT 1').get(at) !== undefined;
    if (!due && !stale) return [];
    return this.#write(() => {
      const rows = this.#db
        .prepare(`INSERT OR IGNORE INTO key_events (key_id, event, actor, at, changes)
                  SELECT id, 'expired', ?, ?, json_object('expiresAt', expires_at) FROM keys WHERE ${DUE} ORDER BY expires_at, id
                  RETURNING seq, key_id, event, actor, at, changes`)
        .all(EXPIRY_ACTOR, at, at) as unknown as EventRow[];
      this.#db.prepare(`UPDATE keys SET expiry_noted_at = ? WHERE ${DUE}`).run(at, at);
      this.#db.prepare('DELETE FROM key_secrets WHERE expires_at <= ?').run(at);
      return rows.map(rowToEvent);
    });
  }

  async touch(uses: readonly KeyUse[]): Promise<void> {
    if (uses.length === 0) return;
    await this.#write(() => {
      const update = this.#db.prepare('UPDATE keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)');
      for (const use of uses) update.run(use.at, use.id, new Date(Date.parse(use.at) - LAST_USED_STEP_MS).toISOString());
    });
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
    const newest = this.#s.newest.get() as { key_hash: string } | undefined;
    const found = this.findByHash(newest?.key_hash ?? PROBE_HASH);
    if (newest !== undefined && found === undefined) throw new Error('the newest key cannot be read back by its hash: the key_hash index does not match the table');
  }

  onChange(listener: (change: KeyChange) => void): void {
    this.#changeListeners.add(listener);
    if (this.#feedTimer !== null || this.#path === ':memory:' || !this.#db.isOpen) return;
    this.#feed.start();
    this.#feedTimer = setInterval(() => this.checkChanges(), CHANGE_CHECK_MS);
    this.#feedTimer.unref();
  }

  /** Reads the change feed now (the timer does every CHANGE_CHECK_MS); public for tests. */
  checkChanges(): void {
    if (this.#db.isOpen) this.#feed.check();
  }

  #emit(change: KeyChange): void {
    for (const listener of this.#changeListeners) {
      try {
        listener(change);
      } catch {
        // A listener's failure must not stop the others or the check.
      }
    }
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
   * on a busy file (it would stall the event loop); the next check tries again. A restored
   * file of an older schema is upgraded as it is opened (only a store that may create does).
   */
  #reopen(): void {
    let db: DatabaseSync;
    let identity: string | null;
    try {
      const before = identityOf(this.#path);
      db = SqliteKeyStore.#openDatabase(this.#path, 0, this.#create);
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
    this.#s = statements(db);
    this.#feedStatements = null;
    this.#identity = identity;
    this.#fileProblem = null;
    old.close();
    if (this.#feedTimer !== null) this.#feed.start();
    this.#emit({ kind: 'all' });
    this.#emitFile({ kind: 'reopened', message: `sqlite file ${this.#path} names another file now (replaced or restored): reopened it` });
  }

  /** Records a problem and tells the listeners once per change of it. */
  #report(problem: StoreFileChange): void {
    const same = this.#fileProblem?.kind === problem.kind;
    this.#fileProblem = problem;
    if (!same) this.#emitFile(problem);
  }

  #emitFile(change: StoreFileChange): void {
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
    if (this.#feedTimer !== null) clearInterval(this.#feedTimer);
    this.#watch = null;
    this.#feedTimer = null;
    this.#fileListeners.clear();
    this.#changeListeners.clear();
    this.#endSnapshot();
    if (this.#db.isOpen) this.#db.close();
  }
}
