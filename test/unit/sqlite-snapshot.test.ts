import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hashKey } from '../../src/keys/key-format.ts';
import { mintKey } from '../../src/keys/mint-key.ts';
import { SqliteKeyStore } from '../../src/keys/sqlite-store.ts';
import { BIN, tempDir } from '../helpers/sidecar.ts';

// The SQLite store's lookups share one read snapshot per event-loop turn (see the class
// comment). These tests pin down what that may and may not change, with other processes
// on the same real file. The other processes run synchronously (execFileSync), so the
// turn in which the store opened its snapshot is still going on while they work.

const noKey = hashKey(mintKey({ type: 'server' }).key);
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * `keygate keys create` in another process: the way operators add keys beside a running
 * sidecar. Synchronous on purpose: the blackbox harness's `createKey` awaits the child,
 * and that await would end the turn (and the snapshot) these tests look into.
 */
function createKeyElsewhere(path: string): string {
  const out = execFileSync(process.execPath, [BIN, 'keys', 'create', '--type', 'server', '--json', '--store', `sqlite:${path}`], { encoding: 'utf8' });
  return (JSON.parse(out) as { key: string }).key;
}

/** Runs SQL in another process with no busy wait; returns the rows of the last statement. */
function sqlElsewhere(path: string, sql: string): unknown[] {
  const script = `const { DatabaseSync } = require('node:sqlite');
const db = new DatabaseSync(process.argv[1], { timeout: 0 });
process.stdout.write(JSON.stringify(db.prepare(process.argv[2]).all()));`;
  return JSON.parse(execFileSync(process.execPath, ['-e', script, path, sql], { encoding: 'utf8' })) as unknown[];
}

function freshStore(): { store: SqliteKeyStore; path: string } {
  const path = join(tempDir('kg-snapshot-'), 'keys.db');
  return { store: new SqliteKeyStore(path), path };
}

describe('SQLite store: one read snapshot per event-loop turn', () => {
  it('does not block another process creating a key, and finds that key from the next turn', async () => {
    const { store, path } = freshStore();
    expect(store.findByHash(noKey)).toBeUndefined(); // the turn's snapshot is open from here
    const key = createKeyElsewhere(path); // a writer is not held up by the open snapshot
    // Same turn: still the snapshot taken before the key existed (the bound is one turn).
    expect(store.findByHash(hashKey(key))).toBeUndefined();
    await nextTurn();
    expect(store.findByHash(hashKey(key))?.type).toBe('server');
    await store.close();
  });

  it('ends the snapshot with the turn, so it holds back no checkpoint', async () => {
    const { store, path } = freshStore();
    createKeyElsewhere(path); // leaves frames in the WAL
    store.findByHash(noKey);
    // While the snapshot is open, resetting the WAL has to wait for this reader.
    expect(sqlElsewhere(path, 'PRAGMA wal_checkpoint(TRUNCATE)')).toEqual([{ busy: 1, log: expect.any(Number), checkpointed: expect.any(Number) }]);
    await nextTurn();
    expect(sqlElsewhere(path, 'PRAGMA wal_checkpoint(TRUNCATE)')).toEqual([{ busy: 0, log: 0, checkpointed: 0 }]);
    await store.close();
  });

  it('commits its own writes at once, even after a lookup in the same turn', async () => {
    const { store, path } = freshStore();
    store.findByHash(noKey);
    const { record, key } = mintKey({ type: 'scoped', referenceId: 'alice' });
    await store.insert(record, hashKey(key)); // an await is a microtask: the turn goes on
    expect(sqlElsewhere(path, 'SELECT id FROM keys')).toEqual([{ id: record.id }]);
    store.findByHash(noKey);
    expect(await store.revoke(record.id)).toBe(true);
    expect(sqlElsewhere(path, 'SELECT revoked_at IS NOT NULL AS revoked FROM keys')).toEqual([{ revoked: 1 }]);
    await store.close();
  });

  it('can be closed in the turn of a lookup', async () => {
    const { store, path } = freshStore();
    store.findByHash(noKey);
    await store.close();
    await nextTurn(); // the scheduled end of the snapshot finds the store closed
    const reopened = new SqliteKeyStore(path);
    expect(reopened.findByHash(noKey)).toBeUndefined();
    await reopened.close();
  });
});
