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
