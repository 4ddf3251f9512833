import pg from 'pg';
import type { PostgresStoreOptions } from '../keys/store-url.ts';
import { LINK_COLUMNS, type LinkRow, linkValues, rowToLink } from './link-rows.ts';
import type { LinkRecord, LinkStore } from './link-store.ts';

const POOL_MAX = 4;

/** pg reads JSONB as values and TIMESTAMPTZ as Dates: back to the text form both stores share. */
type PgLinkRow = Omit<LinkRow, 'tags' | 'customer_info' | 'manufacturer_filters' | 'allowed_origins' | 'created_at' | 'expires_at' | 'linked_at' | 'used_at'> & {
  tags: unknown;
  customer_info: unknown;
  manufacturer_filters: unknown;
  allowed_origins: unknown;
  created_at: Date;
  expires_at: Date;
  linked_at: Date | null;
  used_at: Date | null;
};

function textRow(r: PgLinkRow): LinkRow {
  const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());
  return {
    ...r,
    tags: JSON.stringify(r.tags),
    customer_info: r.customer_info === null ? null : JSON.stringify(r.customer_info),
    manufacturer_filters: r.manufacturer_filters === null ? null : JSON.stringify(r.manufacturer_filters),
    allowed_origins: JSON.stringify(r.allowed_origins),
    created_at: r.created_at.toISOString(),
    expires_at: r.expires_at.toISOString(),
    linked_at: iso(r.linked_at),
    used_at: iso(r.used_at),
  };
}

function quoteIdent(name: string): string {
  return '"' + name.replaceAll('"', '""') + '"';
}

/**
 * Links in the PostgreSQL store's schema, on a small pool of their own (links are rare
 * next to key lookups). Each conditional UPDATE takes the row's lock: of several replicas
 * finishing one link at once, the first commits and every other re-reads the row, finds
 * `used_at` set and updates nothing (READ COMMITTED's re-check, PostgreSQL §13.2.1).
 */
export class PostgresLinkStore implements LinkStore {
  readonly #pool: pg.Pool;
  readonly #table: string;

  constructor(options: PostgresStoreOptions) {
    this.#pool = new pg.Pool({ connectionString: options.connectionString, application_name: options.applicationName, max: POOL_MAX, idleTimeoutMillis: 10_000 });
    this.#pool.on('error', () => {
      /* an idle client's connection dropped: the next query opens another */
    });
    this.#table = (options.schema === null ? '' : quoteIdent(options.schema) + '.') + 'keygate_connect_links';
  }

  async #changes(sql: string, params: unknown[]): Promise<number> {
    return (await this.#pool.query(sql, params)).rowCount ?? 0;
  }

  async insert(link: LinkRecord, tokenHash: string): Promise<void> {
    const values = linkValues(link, tokenHash);
    await this.#pool.query(`INSERT INTO ${this.#table} (${LINK_COLUMNS}, token_hash) VALUES (${values.map((_, i) => `$${i + 1}`).join(', ')})`, values);
  }

  async findByTokenHash(tokenHash: string): Promise<LinkRecord | undefined> {
    const { rows } = await this.#pool.query<PgLinkRow>(`SELECT ${LINK_COLUMNS} FROM ${this.#table} WHERE token_hash = $1`, [tokenHash]);
    return rows[0] === undefined ? undefined : rowToLink(textRow(rows[0]));
  }

  async bindSession(id: string, sessionHash: string): Promise<boolean> {
    return (await this.#changes(`UPDATE ${this.#table} SET session_hash = $1 WHERE id = $2 AND session_hash IS NULL`, [sessionHash, id])) === 1;
  }

  async startStep(id: string, stepHash: string): Promise<void> {
    await this.#pool.query(`UPDATE ${this.#table} SET step_hash = $1 WHERE id = $2 AND used_at IS NULL`, [stepHash, id]);
  }

  async endStep(id: string, stepHash: string): Promise<void> {
    await this.#pool.query(`UPDATE ${this.#table} SET step_hash = NULL WHERE id = $1 AND step_hash = $2`, [id, stepHash]);
  }

  async finishStep(id: string, stepHash: string, at: string, sessionHash: string, newSessionHash: string): Promise<boolean> {
    const sql = `UPDATE ${this.#table} SET linked_at = $1, step_hash = NULL, session_hash = $2 WHERE id = $3 AND step_hash = $4 AND session_hash = $5 AND used_at IS NULL`;
    return (await this.#changes(sql, [at, newSessionHash, id, stepHash, sessionHash])) === 1;
  }

  async claim(id: string, at: string, outcome: 'key' | 'denied', sessionHash: string): Promise<boolean> {
    const sql = `UPDATE ${this.#table} SET used_at = $1, outcome = $2 WHERE id = $3 AND used_at IS NULL AND expires_at > $1 AND session_hash = $4`;
    return (await this.#changes(sql, [at, outcome, id, sessionHash])) === 1;
  }

  async release(id: string, sessionHash: string): Promise<boolean> {
    const sql = `UPDATE ${this.#table} SET used_at = NULL, outcome = NULL WHERE id = $1 AND outcome = 'key' AND key_id IS NULL AND session_hash = $2`;
    return (await this.#changes(sql, [id, sessionHash])) === 1;
  }

  async recordKey(id: string, keyId: string): Promise<void> {
    await this.#pool.query(`UPDATE ${this.#table} SET key_id = $1 WHERE id = $2`, [keyId, id]);
  }

  async purge(before: string): Promise<number> {
    return this.#changes(`DELETE FROM ${this.#table} WHERE expires_at < $1`, [before]);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
