import type { DatabaseSync } from 'node:sqlite';
import { KeygateError } from '../errors/keygate-error.ts';

/** SQLite's SQLITE_BUSY, in the low byte of every extended busy code (BUSY_SNAPSHOT, BUSY_RECOVERY, …). */
const SQLITE_BUSY = 5;
export const BUSY_RETRY_MS = 5000;

export function isBusy(err: unknown): boolean {
  const code = (err as { errcode?: unknown }).errcode;
  return typeof code === 'number' && (code & 0xff) === SQLITE_BUSY;
}

/**
 * Runs `step`, again while SQLite answers "database is locked", for up to 5 s. The busy
 * timeout covers waiting for a lock, but not every busy answer: SQLite returns some at once
 * because waiting could deadlock. The one that matters here is opening a brand-new file
 * from several processes at once (a CLI and a sidecar, or `keys create` run in parallel):
 * switching to WAL, or a read that turns into a write, fails with SQLITE_BUSY_SNAPSHOT
 * when another process wrote in between. Run again, the step finds the work done. Only
 * the store's opening statements retry; they are idempotent, and opening is not on a
 * request's path.
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

/** The connections' busy timeout outside writeWhenFree (opening, reads). */
export const BUSY_TIMEOUT_MS = 5000;

/**
 * Runs a write on a connection whose lock another process may hold (a CLI, another
 * sidecar, a backup): without waiting for the lock inside SQLite — node:sqlite is
 * synchronous, so a 5 s busy timeout would stop the event loop, every request and the
 * health check with it, for 5 s — but trying with no busy timeout and, while "database is
 * locked", again after a pause, off the event loop, for up to `retryMs`. Then the write
 * fails with 503 STORE_UNAVAILABLE. `step` must leave nothing behind when it throws (a
 * rolled-back transaction, one autocommit statement), so running it again is safe.
 */
export async function writeWhenFree<T>(db: DatabaseSync, step: () => T, retryMs = BUSY_RETRY_MS): Promise<T> {
  const deadline = Date.now() + retryMs;
  for (let attempt = 1; ; attempt++) {
    db.exec('PRAGMA busy_timeout = 0');
    try {
      return step();
    } catch (err) {
      if (!isBusy(err)) throw err;
      if (Date.now() >= deadline) throw new KeygateError('STORE_UNAVAILABLE', { detail: `the SQLite store was locked by another writer for ${retryMs} ms`, cause: err });
    } finally {
      db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(5 * attempt, 50)));
  }
}
