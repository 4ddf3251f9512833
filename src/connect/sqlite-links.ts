import { DatabaseSync, type StatementResultingChanges } from 'node:sqlite';
import { writeWhenFree } from '../keys/sqlite-busy.ts';
import { LINK_COLUMNS, type LinkRow, linkValues, rowToLink } from './link-rows.ts';
import type { LinkRecord, LinkStore } from './link-store.ts';

/**
 * Links in the SQLite store's file, on a connection of their own: the key store's
 * connection holds a read snapshot per event-loop turn for lookups, and a link's writes
 * must not wait for it or end it. The table is made by the store's schema steps
 * (versions 3 and 4). SQLite serialises writers, so each conditional UPDATE below is decided
 * by exactly one caller, in this process or another.
 */
export class SqliteLinkStore implements LinkStore {
  readonly #db: DatabaseSync;

  constructor(path: string) {
    this.#db = new DatabaseSync(path, { timeout: 5000 });
  }

  async insert(link: LinkRecord, tokenHash: string): Promise<void> {
    const insert = this.#db.prepare(
      `INSERT INTO connect_links (${LINK_COLUMNS}, token_hash) VALUES (${LINK_COLUMNS.split(',')
        .map(() => '?')
        .join(', ')}, ?)`,
    );
    await this.#run(() => insert.run(...linkValues(link, tokenHash)));
  }

  /** One autocommit write, waiting for a lock another process holds off the event loop (writeWhenFree). */
  #run(write: () => StatementResultingChanges): Promise<StatementResultingChanges> {
    return writeWhenFree(this.#db, write);
  }

  async findByTokenHash(tokenHash: string): Promise<LinkRecord | undefined> {
    const row = this.#db.prepare(`SELECT ${LINK_COLUMNS} FROM connect_links WHERE token_hash = ?`).get(tokenHash) as LinkRow | undefined;
    return row === undefined ? undefined : rowToLink(row);
  }

  async bindSession(id: string, sessionHash: string): Promise<boolean> {
    const bind = this.#db.prepare('UPDATE connect_links SET session_hash = ? WHERE id = ? AND session_hash IS NULL');
    return (await this.#run(() => bind.run(sessionHash, id))).changes === 1;
  }

  async startStep(id: string, stepHash: string): Promise<void> {
    const start = this.#db.prepare('UPDATE connect_links SET step_hash = ? WHERE id = ? AND used_at IS NULL');
    await this.#run(() => start.run(stepHash, id));
  }

  async endStep(id: string, stepHash: string): Promise<void> {
    const end = this.#db.prepare('UPDATE connect_links SET step_hash = NULL WHERE id = ? AND step_hash = ?');
    await this.#run(() => end.run(id, stepHash));
  }

  async finishStep(id: string, stepHash: string, at: string, sessionHash: string, newSessionHash: string): Promise<boolean> {
    const finish = this.#db.prepare('UPDATE connect_links SET linked_at = ?, step_hash = NULL, session_hash = ? WHERE id = ? AND step_hash = ? AND session_hash = ? AND used_at IS NULL');
    return (await this.#run(() => finish.run(at, newSessionHash, id, stepHash, sessionHash))).changes === 1;
  }

  async claim(id: string, at: string, outcome: 'key' | 'denied', sessionHash: string): Promise<boolean> {
    // ISO-8601 UTC times of one format compare as text in time order.
    const claim = this.#db.prepare('UPDATE connect_links SET used_at = ?, outcome = ? WHERE id = ? AND used_at IS NULL AND expires_at > ? AND session_hash = ?');
    return (await this.#run(() => claim.run(at, outcome, id, at, sessionHash))).changes === 1;
  }

  async release(id: string, sessionHash: string): Promise<boolean> {
    const release = this.#db.prepare("UPDATE connect_links SET used_at = NULL, outcome = NULL WHERE id = ? AND outcome = 'key' AND key_id IS NULL AND session_hash = ?");
    return (await this.#run(() => release.run(id, sessionHash))).changes === 1;
  }

  async recordKey(id: string, keyId: string): Promise<void> {
    const record = this.#db.prepare('UPDATE connect_links SET key_id = ? WHERE id = ?');
    await this.#run(() => record.run(keyId, id));
  }

  async purge(before: string): Promise<number> {
    const purge = this.#db.prepare('DELETE FROM connect_links WHERE expires_at < ?');
    return Number((await this.#run(() => purge.run(before))).changes);
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}
