// SqliteKeyStore.checkFile: the path must keep naming the files the store has open. Real
// files; the other writers are other processes (`keygate keys create`), as in production.
import { execFileSync } from 'node:child_process';
import { copyFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hashKey } from '../../src/keys/key-format.ts';
import { SqliteKeyStore } from '../../src/keys/sqlite-store.ts';
import type { StoreFileChange } from '../../src/keys/store.ts';
import { BIN, tempDir } from '../helpers/sidecar.ts';

function createKeyElsewhere(path: string): string {
  const out = execFileSync(process.execPath, [BIN, 'keys', 'create', '--type', 'server', '--json', '--store', `sqlite:${path}`], { encoding: 'utf8' });
  return (JSON.parse(out) as { key: string }).key;
}

function keysElsewhere(path: string): number {
  // JSON Lines: one key per line.
  const out = execFileSync(process.execPath, [BIN, 'keys', 'list', '--json', '--limit', 'all', '--store', `sqlite:${path}`], { encoding: 'utf8' });
  return out.split('\n').filter((line) => line.trim() !== '').length;
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function watched(path: string): { store: SqliteKeyStore; changes: StoreFileChange[] } {
  const store = new SqliteKeyStore(path);
  const changes: StoreFileChange[] = [];
  store.onFileChange((c) => changes.push(c));
  return { store, changes };
}

describe('SQLite store: the path keeps naming the open file', () => {
  it('does nothing while the files are the ones it opened', async () => {
    const path = join(tempDir('kg-watch-'), 'keys.db');
    const { store, changes } = watched(path);
    createKeyElsewhere(path);
    store.checkFile();
    expect(changes).toEqual([]);
    await store.ping();
    await store.close();
  });

  it('a file renamed over the path: keys written to it before the reopen survive closing the old connection', async () => {
    const dir = tempDir('kg-watch-');
    const path = join(dir, 'keys.db');
    const { store, changes } = watched(path);
    createKeyElsewhere(path);
    copyFileSync(path, join(dir, 'new'));
    renameSync(join(dir, 'new'), path);
    const written = createKeyElsewhere(path); // into the new file, before the store notices
    store.checkFile();
    expect(changes.map((c) => c.kind)).toEqual(['reopened']);
    await nextTurn();
    expect(store.findByHash(hashKey(written))?.type).toBe('server');
    await store.close(); // the old connection was closed at the reopen: neither may lose the new file's WAL
    expect(keysElsewhere(path)).toBe(2);
  });

  it('missing: ping says so, once reported, and lookups go on from the open file until it is back', async () => {
    const dir = tempDir('kg-watch-');
    const path = join(dir, 'keys.db');
    const { store, changes } = watched(path);
    const kept = createKeyElsewhere(path);
    renameSync(path, join(dir, 'away.db'));
    store.checkFile();
    store.checkFile();
    expect(changes.map((c) => c.kind)).toEqual(['missing']);
    await expect(store.ping()).rejects.toThrow(/keys\.db no longer exists/);
    await nextTurn();
    expect(store.findByHash(hashKey(kept))?.type).toBe('server');
    renameSync(join(dir, 'away.db'), path); // the same file back
    store.checkFile();
    expect(changes.map((c) => c.kind)).toEqual(['missing', 'reopened']);
    await store.ping();
    await store.close();
  });

  it('a file at the path that is not a database: unusable, reported, retried on the next check', async () => {
    const dir = tempDir('kg-watch-');
    const path = join(dir, 'keys.db');
    const { store, changes } = watched(path);
    createKeyElsewhere(path);
    // With the WAL emptied first: frames left in it would be read over whatever file is put
    // at the path (SQLite pairs the two by name), and could make junk look like a database.
    execFileSync(process.execPath, ['-e', "new (require('node:sqlite').DatabaseSync)(process.argv[1]).exec('PRAGMA wal_checkpoint(TRUNCATE)')", path]);
    execFileSync('sh', ['-c', `printf 'not a database at all, just text%.0s' $(seq 1 400) > ${dir}/junk && mv ${dir}/junk ${path}`]);
    store.checkFile();
    store.checkFile();
    expect(changes.map((c) => c.kind)).toEqual(['unusable']);
    await expect(store.ping()).rejects.toThrow(/cannot be opened: .*not a database/);
    await store.close();
  });
});
