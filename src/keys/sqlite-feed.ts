import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { KeyChange } from './store.ts';

/**
 * How often a store with change listeners asks whether another process wrote
 * (`PRAGMA data_version`, no file read), and when one did, which keys changed (the
 * key_events rows since the last seen). The revocation bound across processes is this
 * interval plus a query; the key cache TTL stays the bound if a check fails.
 */
export const CHANGE_CHECK_MS = 200;
/** More events than this since the last check: the listeners are told "all" (forget everything) rather than each id. */
const FEED_BATCH = 1000;
/** Events whose keys a cache must forget: their secret, settings or state changed. */
const EVICTING = new Set(['updated', 'rotated', 'revoked']);

/** The statements the feed reads with, prepared on the store's connection. */
export interface FeedStatements {
  readonly dataVersion: StatementSync;
  readonly changes: StatementSync;
  readonly lastSeq: StatementSync;
}

export function feedStatements(db: DatabaseSync): FeedStatements {
  return {
    dataVersion: db.prepare('PRAGMA data_version'),
    changes: db.prepare('SELECT seq, key_id, event FROM key_events WHERE seq > ? ORDER BY seq LIMIT ?'),
    lastSeq: db.prepare('SELECT COALESCE(MAX(seq), 0) AS seq FROM key_events'),
  };
}

/**
 * The SQLite store's change feed: what other processes changed in the file, read on a
 * timer, never per request. `PRAGMA data_version` moves only when another connection
 * commits; only then are the key_events since the last seen `seq` read (AUTOINCREMENT:
 * `seq` follows commit order, since SQLite has one writer at a time).
 */
export class SqliteChangeFeed {
  readonly #statements: () => FeedStatements;
  /** Ends the store's read snapshot: data_version and the events are read outside it. */
  readonly #beforeRead: () => void;
  readonly #emit: (change: KeyChange) => void;
  #dataVersion = -1;
  #lastSeq = 0;
  #ready = false;

  constructor(statements: () => FeedStatements, beforeRead: () => void, emit: (change: KeyChange) => void) {
    this.#statements = statements;
    this.#beforeRead = beforeRead;
    this.#emit = emit;
  }

  /** Starts from now (and again after the store reopened another file). A file that cannot answer is tried on the next check. */
  start(): void {
    this.#ready = false;
    try {
      this.#beforeRead();
      const s = this.#statements();
      this.#dataVersion = Number((s.dataVersion.get() as { data_version: number }).data_version);
      this.#lastSeq = Number((s.lastSeq.get() as { seq: number }).seq);
      this.#ready = true;
    } catch {
      // ping (readiness) reports what is wrong with the file; the feed waits for it.
    }
  }

  check(): void {
    if (!this.#ready) {
      this.start();
      return;
    }
    try {
      this.#beforeRead();
      const s = this.#statements();
      const version = Number((s.dataVersion.get() as { data_version: number }).data_version);
      if (version === this.#dataVersion) return;
      this.#dataVersion = version;
      const rows = s.changes.all(this.#lastSeq, FEED_BATCH + 1) as unknown as Array<{ seq: number; key_id: string; event: string }>;
      if (rows.length === 0) return;
      if (rows.length > FEED_BATCH) {
        this.#lastSeq = Number((s.lastSeq.get() as { seq: number }).seq);
        this.#emit({ kind: 'all' });
        return;
      }
      this.#lastSeq = Number(rows[rows.length - 1]!.seq);
      const ids = [...new Set(rows.filter((r) => EVICTING.has(r.event)).map((r) => r.key_id))];
      if (ids.length > 0) this.#emit({ kind: 'keys', ids });
    } catch {
      // A busy or replaced file: the next check tries again; the key cache TTL bounds what is missed.
    }
  }
}
