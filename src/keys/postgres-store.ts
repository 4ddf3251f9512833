/**
 * PostgreSQL shared key store: every replica and the CLI use one set of tables, and a
 * change to a key is pushed to every replica with LISTEN/NOTIFY.
 *
 * Store URL: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAMS]` (or `postgresql://`).
 * Two query parameters are read by Keygate itself and removed before the URL reaches `pg`:
 *   - `schema=NAME`  put the tables in schema NAME (created if missing) instead of the
 *                    connection's default (`public`). Tests use a fresh schema per run so
 *                    parallel runs never collide; deployments can use it to share a database.
 *                    NAME must match [A-Za-z_][A-Za-z0-9_]* (at most 63 characters).
 *   - `application_name=NAME`  shown in pg_stat_activity (default `keygate`); the LISTEN
 *                    connection is NAME + `:listen`.
 * Every other parameter (sslmode, …) is passed to `pg` unchanged.
 *
 * Tables (migrations/postgres-steps.ts): `keygate_keys` (only the SHA-256 hash of the
 * current secret, `key_hash`, unique), `keygate_key_secrets` (previous secrets in a
 * rotation's grace), `keygate_key_events` (the audit trail), `keygate_schema_version`.
 *
 * Changes: every write that changes what a key may do (update, rotate, revoke) calls
 * pg_notify('keygate_key_changed', id) in its transaction, so the notification is sent
 * exactly when it commits; a revocation also notifies `keygate_key_revoked` with the hash,
 * which Keygate before schema 2 listens to. `onChange()` keeps one dedicated connection
 * that LISTENs and reconnects with capped exponential backoff when it drops; after a
 * reconnect it tells the listeners `all` (what was notified meanwhile is lost). Channels
 * are database-wide, so stores in other schemas of the same database also receive the id;
 * for them it only evicts a cache entry that does not exist. The key cache TTL stays the
 * bound when a notification is lost (invariant 7, README: Security).
 *
 * Outages: `connect()` never fails because the database is down. It tries to create the
 * schema and, if that fails, returns a store whose queries reject (the sidecar starts,
 * /readyz says 503, unknown keys get 503 STORE_UNAVAILABLE: invariant 8); schema creation
 * is retried on the next query. Connection, statement and query timeouts keep every call
 * bounded. Nothing here logs; errors reach the caller as rejections.
 */

import type { Notification, PoolConfig } from 'pg';
import pg from 'pg';
import { applyChanges, createdChanges } from './key-diff.ts';
import { EXPIRY_ACTOR, type FieldChange, type KeyEvent } from './key-event.ts';
import type { FoundKey, KeyRecord } from './key-record.ts';
import { migratePostgres } from './migrations/postgres.ts';
import { PG_COLUMNS, PG_INSERT_PLACEHOLDERS, PG_QUALIFIED_COLUMNS, type PgEventRow, type PgKeyRow, pgFilterSql, pgRecordValues, pgRowToEvent, pgRowToFound, pgRowToRecord } from './postgres-rows.ts';
import { type KeyChange, type KeyChanges, type KeyFilter, type KeyListQuery, type KeyStore, type KeyUse, LAST_USED_STEP_MS, type Rotation, UnknownKeyError, type WriteGuard } from './store.ts';
import { type PostgresStoreOptions, parsePostgresUrl } from './store-url.ts';

const CHANGED_CHANNEL = 'keygate_key_changed';
/** The channel Keygate before schema 2 listens on (payload: the key hash), kept for a rolling upgrade. */
const REVOKED_CHANNEL = 'keygate_key_revoked';

/** Bounds on every database interaction, so no request and no startup ever hangs on the store. */
const CONNECT_TIMEOUT_MS = 2_000;
const STATEMENT_TIMEOUT_MS = 5_000;
const QUERY_TIMEOUT_MS = 6_000;
const POOL_MAX = 10;
const IDLE_TIMEOUT_MS = 30_000;
/** LISTEN connection: reconnect backoff and a heartbeat that notices a silently dead socket. */
const LISTEN_BACKOFF_MIN_MS = 100;
const LISTEN_BACKOFF_MAX_MS = 5_000;
const LISTEN_HEARTBEAT_MS = 10_000;

/** Errors a concurrent CREATE … IF NOT EXISTS in another process can still raise. */
const CONCURRENT_DDL_CODES = new Set(['23505', '42P06', '42P07', '42710']);

/** A hash no key has (hashKey() is lower-case hex): the readiness lookup in an empty table. */
const PROBE_HASH = '0'.repeat(64);

const DUE = 'expires_at IS NOT NULL AND expiry_noted_at IS NULL AND revoked_at IS NULL AND expires_at <= $1';

function quoteIdent(name: string): string {
  return '"' + name.replaceAll('"', '""') + '"';
}

/** A sleep that close() can cut short (the entry's function clears the timer and resolves). */
function sleep(ms: number, sleepers: Set<() => void>): Promise<void> {
  return new Promise((resolve) => {
    const wake = (): void => {
      clearTimeout(timer);
      sleepers.delete(wake);
      resolve();
    };
    const timer = setTimeout(wake, ms);
    timer.unref();
    sleepers.add(wake);
  });
}

export class PostgresKeyStore implements KeyStore {
  readonly kind = 'postgres' as const;
  readonly #pool: pg.Pool;
  readonly #config: PoolConfig;
  readonly #options: PostgresStoreOptions;
  readonly #keys: string;
  readonly #secrets: string;
  readonly #events: string;
  readonly #byHashSql: string;
  /** serve and `keys create` create the tables; other commands must find them (see open-store.ts). */
  readonly #create: boolean;
  #schemaReady = false;
  #schemaPending: Promise<void> | null = null;
  #closed = false;
  readonly #listeners = new Set<(change: KeyChange) => void>();
  #listenLoop: Promise<void> | null = null;
  #listenClient: pg.Client | null = null;
  #listening = false;
  /** Wakes the LISTEN loop when the current connection has to be abandoned (drop, heartbeat failure, close). */
  #wake: (() => void) | null = null;
  readonly #sleepers = new Set<() => void>();

  private constructor(options: PostgresStoreOptions, create: boolean) {
    this.#options = options;
    this.#create = create;
    this.#keys = this.#q('keygate_keys');
    this.#secrets = this.#q('keygate_key_secrets');
    this.#events = this.#q('keygate_key_events');
    // The current secret is the row's key_hash; previous ones, in a rotation's grace, are in keygate_key_secrets.
    this.#byHashSql = `SELECT ${PG_COLUMNS}, NULL::timestamptz AS secret_expires_at FROM ${this.#keys} WHERE key_hash = $1
      UNION ALL SELECT ${PG_QUALIFIED_COLUMNS}, s.expires_at FROM ${this.#secrets} s JOIN ${this.#keys} k ON k.id = s.key_id WHERE s.key_hash = $1 LIMIT 1`;
    this.#config = {
      connectionString: options.connectionString,
      application_name: options.applicationName,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      statement_timeout: STATEMENT_TIMEOUT_MS,
      query_timeout: QUERY_TIMEOUT_MS,
      keepAlive: true,
      keepAliveInitialDelayMillis: LISTEN_HEARTBEAT_MS,
    };
    this.#pool = new pg.Pool({ ...this.#config, max: POOL_MAX, idleTimeoutMillis: IDLE_TIMEOUT_MS });
    // An idle pooled client whose connection dies emits 'error' on the pool; unhandled, that
    // would crash the process. The pool drops that client; the next query opens a new one.
    this.#pool.on('error', () => undefined);
  }

  /**
   * Creates the pool and tries to create or upgrade the schema. Never rejects because the
   * database is unreachable: the returned store's queries reject instead, and retry.
   */
  static async connect(url: string, options: { create: boolean } = { create: true }): Promise<PostgresKeyStore> {
    const store = new PostgresKeyStore(parsePostgresUrl(url), options.create);
    await store.#ensureSchema().catch(() => undefined);
    return store;
  }

  /** True while the LISTEN connection is up (tests and diagnostics). */
  get listening(): boolean {
    return this.#listening;
  }

  /** Whether the tables are known to be of this version (created, upgraded or found by this store). */
  get schemaReady(): boolean {
    return this.#schemaReady;
  }

  #q(name: string): string {
    return (this.#options.schema === null ? '' : quoteIdent(this.#options.schema) + '.') + name;
  }

  #ensureSchema(): Promise<void> {
    if (this.#schemaReady) return Promise.resolve();
    if (this.#closed) return Promise.reject(new Error('key store is closed'));
    this.#schemaPending ??= this.#migrate().then(
      () => {
        this.#schemaReady = true;
        this.#schemaPending = null;
      },
      (err: unknown) => {
        this.#schemaPending = null;
        throw err;
      },
    );
    return this.#schemaPending;
  }

  async #migrate(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const client = await this.#pool.connect();
      let failed: Error | undefined;
      try {
        await migratePostgres(client, {
          create: this.#create,
          schema: this.#options.schema === null ? null : quoteIdent(this.#options.schema),
          q: (name) => this.#q(name),
          label: this.#keys,
        });
        return;
      } catch (err) {
        failed = err instanceof Error ? err : new Error(String(err));
        const code = (err as { code?: unknown }).code;
        if (attempt >= 2 || typeof code !== 'string' || !CONCURRENT_DDL_CODES.has(code)) throw err;
      } finally {
        // A client that failed mid-way may hold a broken connection: destroy it rather than reuse it.
        client.release(failed);
      }
    }
  }

  #query<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<pg.QueryResult<R>> {
    if (this.#schemaReady) return this.#pool.query<R>(sql, params);
    return this.#ensureSchema().then(() => this.#pool.query<R>(sql, params));
  }

  /** Runs `work` in a transaction on one pooled connection. */
  async #transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    await this.#ensureSchema();
    const client = await this.#pool.connect();
    let failed: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      failed = err instanceof Error ? err : new Error(String(err));
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release(failed);
    }
  }

  async #event(client: pg.ClientBase, id: string, event: KeyEvent['event'], actor: string, at: string, changes: Record<string, unknown>): Promise<void> {
    await client.query(`INSERT INTO ${this.#events} (key_id, event, actor, at, changes) VALUES ($1, $2, $3, $4, $5::jsonb)`, [id, event, actor, at, JSON.stringify(changes)]);
  }

  /** The key's row, locked for the rest of the transaction. */
  async #lock(client: pg.ClientBase, id: string): Promise<(PgKeyRow & { key_hash: string }) | undefined> {
    return (await client.query<PgKeyRow & { key_hash: string }>(`SELECT ${PG_COLUMNS}, key_hash FROM ${this.#keys} WHERE id = $1 FOR UPDATE`, [id])).rows[0];
  }

  /**
   * The acting key's row inside the transaction, share-locked: a revocation or change of it
   * committing meanwhile is either seen here or waits for this write to end.
   */
  async #actor(client: pg.ClientBase, guard: WriteGuard): Promise<KeyRecord | undefined> {
    const row = (await client.query<PgKeyRow>(`SELECT ${PG_COLUMNS} FROM ${this.#keys} WHERE id = $1 FOR SHARE`, [guard.actorId])).rows[0];
    return row === undefined ? undefined : pgRowToRecord(row);
  }

  async #notify(client: pg.ClientBase, id: string): Promise<void> {
    await client.query(`SELECT pg_notify('${CHANGED_CHANNEL}', $1)`, [id]);
  }

  findByHash(keyHash: string): Promise<FoundKey | undefined> {
    return this.#query<PgKeyRow>(this.#byHashSql, [keyHash]).then((result) => {
      const row = result.rows[0];
      return row === undefined ? undefined : pgRowToFound(row);
    });
  }

  async insert(record: KeyRecord, keyHash: string, guard?: WriteGuard): Promise<void> {
    await this.#transaction(async (client) => {
      guard?.check(await this.#actor(client, guard), record);
      await client.query(`INSERT INTO ${this.#keys} (${PG_COLUMNS}, key_hash) VALUES (${PG_INSERT_PLACEHOLDERS})`, [...pgRecordValues(record), keyHash]);
      await this.#event(client, record.id, 'created', record.createdBy, record.createdAt, createdChanges(record));
    });
  }

  async get(id: string): Promise<KeyRecord | undefined> {
    const row = (await this.#query<PgKeyRow>(`SELECT ${PG_COLUMNS} FROM ${this.#keys} WHERE id = $1`, [id])).rows[0];
    return row === undefined ? undefined : pgRowToRecord(row);
  }

  async list(query: KeyListQuery): Promise<KeyRecord[]> {
    const params: unknown[] = [];
    const where = pgFilterSql(query, params);
    if (query.afterId !== undefined) {
      const found = await this.#query(`SELECT 1 FROM ${this.#keys} WHERE id = $1`, [query.afterId]);
      if (found.rows.length === 0) throw new UnknownKeyError(query.afterId);
      // The cursor's created_at is read in SQL, not through a JavaScript Date, which would
      // drop its microseconds. The row comparison walks the (created_at, id) index.
      const n = params.push(query.afterId);
      where.push(`(created_at, id) > (SELECT created_at, id FROM ${this.#keys} WHERE id = $${n})`);
    }
    const sql = `SELECT ${PG_COLUMNS} FROM ${this.#keys}${where.length === 0 ? '' : ' WHERE ' + where.join(' AND ')}
                 ORDER BY created_at, id LIMIT $${params.push(query.limit)} OFFSET $${params.push(query.offset ?? 0)}`;
    return (await this.#query<PgKeyRow>(sql, params)).rows.map(pgRowToRecord);
  }

  async count(filter: KeyFilter): Promise<number> {
    const params: unknown[] = [];
    const where = pgFilterSql(filter, params);
    const sql = `SELECT count(*)::int AS n FROM ${this.#keys}${where.length === 0 ? '' : ' WHERE ' + where.join(' AND ')}`;
    return (await this.#query<{ n: number }>(sql, params)).rows[0]!.n;
  }

  async update(id: string, changes: KeyChanges, actor: string, guard?: WriteGuard): Promise<{ record: KeyRecord; changed: Record<string, FieldChange> } | undefined> {
    const updated = await this.#transaction(async (client) => {
      const acting = guard === undefined ? undefined : await this.#actor(client, guard);
      const row = await this.#lock(client, id);
      if (row === undefined) return undefined;
      const at = new Date().toISOString();
      const { next, changed } = applyChanges(pgRowToRecord(row), changes, at);
      guard?.check(acting, next);
      if (Object.keys(changed).length === 0) return { record: next, changed };
      await client.query(
        `UPDATE ${this.#keys} SET name = $2, description = $3, roles = $4::jsonb, conditions = $5::jsonb, allowed_origins = $6::jsonb,
           allowed_redirects = $7::jsonb, allow_reference_id = $8, expires_at = $9, updated_at = $10,
           expiry_noted_at = CASE WHEN expires_at IS NOT DISTINCT FROM $9::timestamptz THEN expiry_noted_at END
         WHERE id = $1`,
        [
          id,
          next.name,
          next.description,
          JSON.stringify(next.roles),
          JSON.stringify(next.conditions),
          JSON.stringify(next.allowedOrigins),
          JSON.stringify(next.allowedRedirects),
          next.allowReferenceId,
          next.expiresAt,
          next.updatedAt,
        ],
      );
      await this.#event(client, id, 'updated', actor, at, changed);
      await this.#notify(client, id);
      return { record: next, changed };
    });
    if (updated !== undefined && Object.keys(updated.changed).length > 0) this.#emit({ kind: 'keys', ids: [id] });
    return updated;
  }

  async rotate(id: string, rotation: Rotation, actor: string, guard?: WriteGuard): Promise<KeyRecord | undefined> {
    const rotated = await this.#transaction(async (client) => {
      const acting = guard === undefined ? undefined : await this.#actor(client, guard);
      const row = await this.#lock(client, id);
      if (row === undefined) return undefined;
      const at = new Date().toISOString();
      const before = pgRowToRecord(row);
      guard?.check(acting, before);
      if (rotation.previousExpiresAt === null) {
        await client.query(`DELETE FROM ${this.#secrets} WHERE key_id = $1`, [id]);
      } else {
        // Secrets from earlier rotations never outlive the new grace period.
        await client.query(`UPDATE ${this.#secrets} SET expires_at = LEAST(expires_at, $2) WHERE key_id = $1`, [id, rotation.previousExpiresAt]);
        await client.query(`INSERT INTO ${this.#secrets} (key_hash, key_id, created_at, expires_at) VALUES ($1, $2, $3, $4)`, [row.key_hash, id, at, rotation.previousExpiresAt]);
      }
      await client.query(`UPDATE ${this.#keys} SET key_hash = $2, key_prefix = $3, updated_at = $4 WHERE id = $1`, [id, rotation.keyHash, rotation.keyPrefix, at]);
      await this.#event(client, id, 'rotated', actor, at, { keyPrefix: { from: before.keyPrefix, to: rotation.keyPrefix }, previousSecretExpiresAt: rotation.previousExpiresAt });
      await this.#notify(client, id);
      return { ...before, keyPrefix: rotation.keyPrefix, updatedAt: at };
    });
    if (rotated !== undefined) this.#emit({ kind: 'keys', ids: [id] });
    return rotated;
  }

  /** Sets revoked_at once (a second revoke keeps the first time and records nothing) and notifies every listening replica at commit. */
  async revoke(id: string, actor = 'cli'): Promise<boolean> {
    const found = await this.#transaction(async (client) => {
      const row = await this.#lock(client, id);
      if (row === undefined) return false;
      if (row.revoked_at !== null) return true;
      const at = new Date().toISOString();
      await client.query(`UPDATE ${this.#keys} SET revoked_at = $2, updated_at = $2 WHERE id = $1`, [id, at]);
      await client.query(`DELETE FROM ${this.#secrets} WHERE key_id = $1`, [id]);
      await this.#event(client, id, 'revoked', actor, at, {});
      await this.#notify(client, id);
      await client.query(`SELECT pg_notify('${REVOKED_CHANNEL}', $1)`, [row.key_hash]);
      return true;
    });
    if (found) this.#emit({ kind: 'keys', ids: [id] });
    return found;
  }

  async events(id: string, page: { readonly offset: number; readonly limit: number }): Promise<KeyEvent[]> {
    const rows = await this.#query<PgEventRow>(`SELECT seq, key_id, event, actor, at, changes FROM ${this.#events} WHERE key_id = $1 ORDER BY seq LIMIT $2 OFFSET $3`, [id, page.limit, page.offset]);
    return rows.rows.map(pgRowToEvent);
  }

  async countEvents(id: string): Promise<number> {
    return (await this.#query<{ n: number }>(`SELECT count(*)::int AS n FROM ${this.#events} WHERE key_id = $1`, [id])).rows[0]!.n;
  }

  /**
   * The due keys are marked and their events written in one statement; a replica doing the
   * same at once waits on the row locks, then finds them marked (READ COMMITTED re-checks
   * the WHERE), and the unique index on expired events is the last word.
   */
  async recordExpiries(now: Date): Promise<KeyEvent[]> {
    const at = now.toISOString();
    const due = await this.#query<PgEventRow>(
      `WITH due AS (UPDATE ${this.#keys} SET expiry_noted_at = $1 WHERE ${DUE} RETURNING id, expires_at)
       INSERT INTO ${this.#events} (key_id, event, actor, at, changes)
         SELECT id, 'expired', $2, $1, jsonb_build_object('expiresAt', to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) FROM due ORDER BY expires_at, id
       ON CONFLICT DO NOTHING
       RETURNING seq, key_id, event, actor, at, changes`,
      [at, EXPIRY_ACTOR],
    );
    await this.#query(`DELETE FROM ${this.#secrets} WHERE expires_at <= $1`, [at]);
    return due.rows.map(pgRowToEvent);
  }

  async touch(uses: readonly KeyUse[]): Promise<void> {
    if (uses.length === 0) return;
    await this.#query(
      `UPDATE ${this.#keys} AS k SET last_used_at = u.at FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at)
       WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at <= u.at - $3 * interval '1 millisecond')`,
      [uses.map((u) => u.id), uses.map((u) => u.at), LAST_USED_STEP_MS],
    );
  }

  /**
   * A lookup as a request makes it (the table, its key_hash index, the row's decoding):
   * one key's hash read back through the lookup statement. `SELECT 1` answered while the
   * table was missing or unreadable (dropped, no privilege) and every lookup failed.
   */
  async ping(): Promise<void> {
    const some = await this.#query<{ key_hash: string }>(`SELECT key_hash FROM ${this.#keys} LIMIT 1`, []);
    const hash = some.rows[0]?.key_hash;
    const found = await this.findByHash(hash ?? PROBE_HASH);
    if (hash !== undefined && found === undefined) throw new Error('a key cannot be read back by its hash: the key_hash index does not match the table');
  }

  onChange(listener: (change: KeyChange) => void): void {
    if (this.#closed) return;
    this.#listeners.add(listener);
    this.#listenLoop ??= this.#listen();
  }

  #emit(change: KeyChange): void {
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch {
        // A listener's failure must not stop the others or the LISTEN connection.
      }
    }
  }

  #dispatch(message: Notification): void {
    if (message.channel !== CHANGED_CHANNEL || message.payload === undefined || message.payload === '') return;
    this.#emit({ kind: 'keys', ids: [message.payload] });
  }

  /** One dedicated LISTEN connection, reconnected with capped exponential backoff and jitter; never throws. */
  async #listen(): Promise<void> {
    let failures = 0;
    let connectedBefore = false;
    while (!this.#closed) {
      const client = new pg.Client({ ...this.#config, application_name: `${this.#options.applicationName}:listen`, statement_timeout: false });
      const dropped = new Promise<void>((resolve) => {
        this.#wake = resolve;
        client.on('error', () => resolve());
        client.on('end', () => resolve());
      });
      client.on('notification', (message) => this.#dispatch(message));
      this.#listenClient = client;
      let heartbeat: NodeJS.Timeout | undefined;
      try {
        await client.connect();
        if (this.#closed) break;
        await client.query(`LISTEN ${CHANGED_CHANNEL}`);
        this.#listening = true;
        failures = 0;
        // Whatever was notified while the connection was down is lost: everything may have changed.
        if (connectedBefore) this.#emit({ kind: 'all' });
        connectedBefore = true;
        // A socket that died without a FIN/RST would never emit 'end': probe it now and then.
        heartbeat = setInterval(() => {
          client.query('SELECT 1').catch(() => this.#wake?.());
        }, LISTEN_HEARTBEAT_MS);
        heartbeat.unref();
        await dropped;
      } catch {
        // Unreachable, refused or closed while connecting: retry below (unless closed).
      } finally {
        clearInterval(heartbeat);
        this.#listening = false;
        this.#listenClient = null;
        this.#wake = null;
        // end() on a dead connection can take a while: wait for it only when closing, and briefly.
        const ended = client.end().catch(() => undefined);
        if (this.#closed) await Promise.race([ended, sleep(1_000, new Set())]);
      }
      if (this.#closed) break;
      failures++;
      const ceiling = Math.min(LISTEN_BACKOFF_MAX_MS, LISTEN_BACKOFF_MIN_MS * 2 ** Math.min(failures - 1, 16));
      await sleep(ceiling / 2 + Math.random() * (ceiling / 2), this.#sleepers);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    for (const wake of [...this.#sleepers]) wake();
    this.#wake?.();
    // Ends a LISTEN connection that is still connecting too; the loop then finishes.
    this.#listenClient?.end().catch(() => undefined);
    await Promise.all([this.#listenLoop, this.#pool.end().catch(() => undefined)]);
  }
}
