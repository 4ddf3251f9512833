/**
 * PostgreSQL shared key store: every replica and the CLI use one table, and a revocation
 * is pushed to every replica with LISTEN/NOTIFY.
 *
 * Store URL: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAMS]` (or `postgresql://`).
 * Two query parameters are read by Keygate itself and removed before the URL reaches `pg`:
 *   - `schema=NAME`  put the table in schema NAME (created if missing) instead of the
 *                    connection's default (`public`). Tests use a fresh schema per run so
 *                    parallel runs never collide; deployments can use it to share a database.
 *                    NAME must match [A-Za-z_][A-Za-z0-9_]* (at most 63 characters).
 *   - `application_name=NAME`  shown in pg_stat_activity (default `keygate`); the LISTEN
 *                    connection is NAME + `:listen`.
 * Every other parameter (sslmode, …) is passed to `pg` unchanged.
 *
 * Table `keygate_keys` mirrors the SQLite store: only the SHA-256 hash of a key is stored
 * (`key_hash`, unique), roles and conditions are JSON, `revoked_at` is set once.
 *
 * Revocation: `revoke()` updates the row and calls pg_notify('keygate_key_revoked', key_hash)
 * in the same statement (so the notification is sent exactly when the update commits).
 * `onRevoked()` keeps one dedicated connection that LISTENs on that channel and reconnects
 * with capped exponential backoff when it drops. Channels are database-wide, so stores in
 * other schemas of the same database also receive the hash; for them it only evicts a cache
 * entry that does not exist. A notification sent while the listener is reconnecting is lost;
 * the key cache TTL stays the bound in that case (DESIGN, invariant 7).
 *
 * Outages: `connect()` never fails because the database is down. It tries to create the
 * schema and, if that fails, returns a store whose queries reject (the sidecar starts,
 * /readyz says 503, unknown keys get 503 STORE_UNAVAILABLE: invariant 8); schema creation
 * is retried on the next query. Connection, statement and query timeouts keep every call
 * bounded. Nothing here logs; errors reach the caller as rejections.
 */
import pg from 'pg';
import type { Notification, PoolConfig } from 'pg';
import type { KeyConditions, KeyRecord, KeyType } from './key-record.ts';
import { StoreNotFoundError, UnknownKeyError, type KeyListQuery, type KeyStore } from './store.ts';
import { parsePostgresUrl, type PostgresStoreOptions } from './store-url.ts';

export const REVOKED_CHANNEL = 'keygate_key_revoked';
const TABLE = 'keygate_keys';
/** `keys list` pages in creation order, and by referenceId; without these it would sort the whole table per page. */
const LISTING_INDEX = 'keygate_keys_listing';
const REFERENCE_INDEX = 'keygate_keys_reference';

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

interface Row {
  id: string;
  type: string;
  reference_id: string | null;
  name: string | null;
  roles: unknown;
  conditions: unknown;
  created_at: Date | string;
  expires_at: Date | string | null;
  revoked_at: Date | string | null;
}

const COLUMNS = 'id, type, reference_id, name, roles, conditions, created_at, expires_at, revoked_at';

function iso(value: Date | string): string {
  return value instanceof Date ? value.toISOString() : new Date(value).toISOString();
}

function rowToRecord(row: Row): KeyRecord {
  return {
    id: row.id,
    type: row.type as KeyType,
    referenceId: row.reference_id,
    name: row.name,
    roles: (typeof row.roles === 'string' ? JSON.parse(row.roles) : row.roles) as string[],
    conditions: (typeof row.conditions === 'string' ? JSON.parse(row.conditions) : row.conditions) as KeyConditions,
    createdAt: iso(row.created_at),
    expiresAt: row.expires_at === null ? null : iso(row.expires_at),
    revokedAt: row.revoked_at === null ? null : iso(row.revoked_at),
  };
}

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
  readonly #table: string;
  readonly #byHashSql: string;
  /** serve and `keys create` create the table; other commands must find it (see open-store.ts). */
  readonly #create: boolean;
  #schemaReady = false;
  #schemaPending: Promise<void> | null = null;
  #closed = false;
  readonly #listeners = new Set<(keyHash: string) => void>();
  #listenLoop: Promise<void> | null = null;
  #listenClient: pg.Client | null = null;
  #listening = false;
  /** Wakes the LISTEN loop when the current connection has to be abandoned (drop, heartbeat failure, close). */
  #wake: (() => void) | null = null;
  readonly #sleepers = new Set<() => void>();

  private constructor(options: PostgresStoreOptions, create: boolean) {
    this.#options = options;
    this.#create = create;
    this.#table = (options.schema === null ? '' : quoteIdent(options.schema) + '.') + TABLE;
    this.#byHashSql = `SELECT ${COLUMNS} FROM ${this.#table} WHERE key_hash = $1`;
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
   * Creates the pool and tries to create the schema. Never rejects because the database is
   * unreachable: the returned store's queries reject instead, and retry the schema.
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

  /** Whether the table is known to exist (created or found by this store). */
  get schemaReady(): boolean {
    return this.#schemaReady;
  }

  #ensureSchema(): Promise<void> {
    if (this.#schemaReady) return Promise.resolve();
    if (this.#closed) return Promise.reject(new Error('key store is closed'));
    this.#schemaPending ??= this.#createSchema().then(
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

  async #createSchema(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#createSchemaOnce();
        return;
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (attempt >= 2 || typeof code !== 'string' || !CONCURRENT_DDL_CODES.has(code)) throw err;
      }
    }
  }

  async #createSchemaOnce(): Promise<void> {
    const client = await this.#pool.connect();
    let failed: Error | undefined;
    try {
      // Already there (the usual case, and the only one for a role without CREATE rights)?
      const found = await client.query<{ table: boolean; indexes: boolean }>(
        'SELECT to_regclass($1) IS NOT NULL AS table, to_regclass($2) IS NOT NULL AND to_regclass($3) IS NOT NULL AS indexes',
        [this.#table, this.#qualified(LISTING_INDEX), this.#qualified(REFERENCE_INDEX)],
      );
      const row = found.rows[0];
      if (row?.table === true) {
        // A table made before the listing indexes: add them when allowed; listing works without them, only slower.
        if (!row.indexes && this.#create) await client.query(this.#indexSql()).catch(() => undefined);
        return;
      }
      if (!this.#create) {
        throw new StoreNotFoundError(`the database has no table ${this.#table} (keygate serve or keygate keys create makes it)`);
      }
      // Several processes may start at once: one creates, the others wait on the lock and
      // then find everything in place. The lock is released with the transaction.
      await client.query('BEGIN');
      try {
        await client.query("SELECT pg_advisory_xact_lock(hashtext('keygate.schema'))");
        if (this.#options.schema !== null) await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(this.#options.schema)}`);
        await client.query(`
          CREATE TABLE IF NOT EXISTS ${this.#table} (
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
          )`);
        await client.query(`CREATE UNIQUE INDEX IF NOT EXISTS keygate_keys_key_hash ON ${this.#table} (key_hash)`);
        await client.query(this.#indexSql());
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    } catch (err) {
      failed = err instanceof Error ? err : new Error(String(err));
      throw err;
    } finally {
      // A client that failed mid-way may hold a broken connection: destroy it rather than reuse it.
      client.release(failed);
    }
  }

  #qualified(name: string): string {
    return (this.#options.schema === null ? '' : quoteIdent(this.#options.schema) + '.') + name;
  }

  #indexSql(): string {
    return `CREATE INDEX IF NOT EXISTS ${LISTING_INDEX} ON ${this.#table} (created_at, id);
            CREATE INDEX IF NOT EXISTS ${REFERENCE_INDEX} ON ${this.#table} (reference_id, created_at, id)`;
  }

  #query<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<pg.QueryResult<R>> {
    if (this.#schemaReady) return this.#pool.query<R>(sql, params);
    return this.#ensureSchema().then(() => this.#pool.query<R>(sql, params));
  }

  findByHash(keyHash: string): Promise<KeyRecord | undefined> {
    return this.#query<Row>(this.#byHashSql, [keyHash]).then((result) => {
      const row = result.rows[0];
      return row === undefined ? undefined : rowToRecord(row);
    });
  }

  async insert(record: KeyRecord, keyHash: string): Promise<void> {
    await this.#query(
      `INSERT INTO ${this.#table} (id, key_hash, type, reference_id, name, roles, conditions, created_at, expires_at, revoked_at)
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9, $10)`,
      [record.id, keyHash, record.type, record.referenceId, record.name, JSON.stringify(record.roles),
        JSON.stringify(record.conditions), record.createdAt, record.expiresAt, record.revokedAt],
    );
  }

  async list(query: KeyListQuery): Promise<KeyRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (query.type !== undefined) where.push(`type = $${params.push(query.type)}`);
    if (query.referenceId !== undefined) where.push(`reference_id = $${params.push(query.referenceId)}`);
    if (query.afterId !== undefined) {
      const found = await this.#query(`SELECT 1 FROM ${this.#table} WHERE id = $1`, [query.afterId]);
      if (found.rows.length === 0) throw new UnknownKeyError(query.afterId);
      // The cursor's created_at is read in SQL, not through a JavaScript Date, which would
      // drop its microseconds. The row comparison walks the (created_at, id) index.
      const n = params.push(query.afterId);
      where.push(`(created_at, id) > (SELECT created_at, id FROM ${this.#table} WHERE id = $${n})`);
    }
    const sql = `SELECT ${COLUMNS} FROM ${this.#table}${where.length === 0 ? '' : ' WHERE ' + where.join(' AND ')}
                 ORDER BY created_at, id LIMIT $${params.push(query.limit)}`;
    return (await this.#query<Row>(sql, params)).rows.map(rowToRecord);
  }

  /**
   * Sets revoked_at once (a second revoke keeps the first time) and notifies every listening
   * replica in the same statement: the notification is delivered when the update commits.
   */
  async revoke(id: string): Promise<boolean> {
    const result = await this.#query<{ key_hash: string }>(
      `WITH revoked AS (
         UPDATE ${this.#table} SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 RETURNING key_hash
       )
       SELECT key_hash, pg_notify('${REVOKED_CHANNEL}', key_hash) FROM revoked`,
      [id],
    );
    return result.rows.length > 0;
  }

  /**
   * A lookup as a request makes it (the table, its key_hash index, the row's decoding):
   * one key's hash read back through the lookup statement. `SELECT 1` answered while the
   * table was missing or unreadable (dropped, no privilege) and every lookup failed.
   */
  async ping(): Promise<void> {
    const some = await this.#query<{ key_hash: string }>(`SELECT key_hash FROM ${this.#table} LIMIT 1`, []);
    const hash = some.rows[0]?.key_hash;
    const found = await this.findByHash(hash ?? PROBE_HASH);
    if (hash !== undefined && found === undefined) throw new Error('a key cannot be read back by its hash: the key_hash index does not match the table');
  }

  onRevoked(listener: (keyHash: string) => void): void {
    if (this.#closed) return;
    this.#listeners.add(listener);
    this.#listenLoop ??= this.#listen();
  }

  #dispatch(message: Notification): void {
    if (message.channel !== REVOKED_CHANNEL || message.payload === undefined || message.payload === '') return;
    for (const listener of this.#listeners) {
      try {
        listener(message.payload);
      } catch {
        // A listener's failure must not stop the others or the LISTEN connection.
      }
    }
  }

  /** One dedicated LISTEN connection, reconnected with capped exponential backoff and jitter; never throws. */
  async #listen(): Promise<void> {
    let failures = 0;
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
        await client.query(`LISTEN ${REVOKED_CHANNEL}`);
        this.#listening = true;
        failures = 0;
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
