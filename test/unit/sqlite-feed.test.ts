// The SQLite change feed: another connection's writes reach onChange by id, only the keys
// whose power changed, and "all" when more happened than one check reads.
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { KeyService } from '../../src/keys/key-service.ts';
import { SqliteKeyStore } from '../../src/keys/sqlite-store.ts';
import type { KeyChange } from '../../src/keys/store.ts';
import { tempDir } from '../helpers/sidecar.ts';

const stores: SqliteKeyStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

function pair(): { reader: SqliteKeyStore; writer: KeyService; path: string; seen: KeyChange[] } {
  const path = join(tempDir('kg-feed-'), 'keys.db');
  const reader = new SqliteKeyStore(path);
  const w = new SqliteKeyStore(path);
  stores.push(reader, w);
  const seen: KeyChange[] = [];
  reader.onChange((c) => seen.push(c));
  return { reader, writer: new KeyService(w), path, seen };
}

describe('SQLite change feed', () => {
  it('reports the keys another connection revoked, rotated or changed, and nothing for creations or uses', async () => {
    const { reader, writer, seen } = pair();
    const a = await writer.create({ type: 'server' }, 'cli');
    const b = await writer.create({ type: 'access-token' }, 'cli');
    await writer.store.touch([{ id: a.record.id, at: new Date().toISOString() }]);
    reader.checkChanges();
    expect(seen).toEqual([]);
    await writer.revoke(a.record.id, 'cli');
    await writer.rotate(b.record.id, 0, 'cli');
    await writer.update(b.record.id, { name: 'x' }, 'cli');
    reader.checkChanges();
    expect(seen).toEqual([{ kind: 'keys', ids: [a.record.id, b.record.id] }]);
    reader.checkChanges();
    expect(seen).toHaveLength(1); // nothing new: data_version did not move
  });

  it('says "all" when more events arrived than one check reads', async () => {
    const { reader, path, seen } = pair();
    const db = new DatabaseSync(path);
    db.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1001)
      INSERT INTO key_events (key_id, event, actor, at) SELECT 'key_' || i, 'revoked', 'cli', '2030-01-01T00:00:00.000Z' FROM n`);
    db.close();
    reader.checkChanges();
    expect(seen).toEqual([{ kind: 'all' }]);
  });
});
