import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { retryWhileBusy } from '../../src/keys/sqlite-store.ts';

// SQLite answers some lock conflicts with "database is locked" at once, without waiting
// out the busy timeout: a read transaction that turns into a write after another
// connection committed (SQLITE_BUSY_SNAPSHOT in WAL mode). Opening a brand-new store from
// several processes at once hits exactly that in `CREATE TABLE IF NOT EXISTS`. These
// tests produce the real error with two connections to one real file.

function freshFile(): string {
  return join(mkdtempSync(join(tmpdir(), 'kg-busy-')), 'keys.db');
}

describe('retryWhileBusy', () => {
  it('runs a step again after a real SQLITE_BUSY_SNAPSHOT, and it then succeeds', () => {
    const path = freshFile();
    const a = new DatabaseSync(path, { timeout: 1000 });
    a.exec('PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER)');
    const b = new DatabaseSync(path, { timeout: 1000 });
    const codes: unknown[] = [];
    let attempts = 0;
    retryWhileBusy(() => {
      attempts++;
      b.exec('BEGIN');
      b.prepare('SELECT count(*) FROM t').get(); // b's snapshot starts here
      if (attempts === 1) a.exec('INSERT INTO t VALUES (1)'); // another writer commits after it
      try {
        b.exec('INSERT INTO t VALUES (2)'); // the read turns into a write on a stale snapshot
        b.exec('COMMIT');
      } catch (err) {
        codes.push((err as { errcode?: unknown }).errcode);
        b.exec('ROLLBACK');
        throw err;
      }
    });
    expect(codes).toEqual([517]); // SQLITE_BUSY_SNAPSHOT, answered without waiting
    expect(attempts).toBe(2);
    expect(a.prepare('SELECT x FROM t ORDER BY x').all()).toEqual([{ x: 1 }, { x: 2 }]);
    a.close();
    b.close();
  });

  it('does not retry other errors', () => {
    let attempts = 0;
    const db = new DatabaseSync(':memory:');
    expect(() =>
      retryWhileBusy(() => {
        attempts++;
        db.exec('SELECT * FROM no_such_table');
      }),
    ).toThrow(/no such table/);
    expect(attempts).toBe(1);
  });

  it('gives up with the busy error once its time is spent', () => {
    const path = freshFile();
    const holder = new DatabaseSync(path);
    holder.exec('PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER); BEGIN EXCLUSIVE');
    const waiter = new DatabaseSync(path, { timeout: 10 });
    let attempts = 0;
    expect(() =>
      retryWhileBusy(() => {
        attempts++;
        waiter.exec('INSERT INTO t VALUES (1)');
      }, 200),
    ).toThrow(/database is locked/);
    expect(attempts).toBeGreaterThan(1);
    holder.exec('ROLLBACK');
    holder.close();
    waiter.close();
  });
});
