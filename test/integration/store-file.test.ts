// The SQLite store file under operations: a damaged file is not ready, and a file replaced
// or deleted and restored under a running sidecar (what a restore does) is noticed and
// reopened. Real sidecar processes; keys created and revoked with the real CLI.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, openSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type DemoBackend, startDemoBackend } from '../../src/demo/backend.ts';
import { hashKey } from '../../src/keys/key-format.ts';
import { mintKey } from '../../src/keys/mint-key.ts';
import { SqliteKeyStore } from '../../src/keys/sqlite-store.ts';
import { key, send } from '../helpers/http.ts';
import { BIN, ROOT, type Sidecar, startSidecar, tempDir } from '../helpers/sidecar.ts';

let backend: DemoBackend | undefined;
let sidecar: Sidecar | undefined;
afterEach(async () => {
  await sidecar?.stop('SIGKILL');
  await backend?.close();
});

function cli(args: string[]): string {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`keygate ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

function createKey(store: string): { id: string; key: string } {
  return JSON.parse(cli(['keys', 'create', '--type', 'server', '--store', store, '--json'])) as { id: string; key: string };
}

async function statusWith(k: string): Promise<number> {
  return (await send(sidecar!.url, 'GET', '/v1/devices', { headers: key(k) })).status;
}

async function until(what: string, check: () => Promise<boolean>, ms = 8000): Promise<void> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function boot(store: string): Promise<void> {
  backend = await startDemoBackend();
  sidecar = await startSidecar({ upstream: backend.url, store });
}

describe('readiness exercises the store as requests do', () => {
  it('a SQLite file whose keys table is damaged is not ready (503, with the reason), and lookups are refused with 503', async () => {
    const path = join(tempDir('kg-corrupt-'), 'keygate.db');
    // Enough keys for the table and its index to span many pages.
    const seed = new SqliteKeyStore(path);
    for (let i = 0; i < 300; i++) {
      const { record, key: k } = mintKey({ type: 'scoped', referenceId: `user-${i}` });
      await seed.insert(record, hashKey(k));
    }
    const { record, key: known } = mintKey({ type: 'server' });
    await seed.insert(record, hashKey(known));
    await seed.close(); // the last connection: everything is in the file, no WAL left
    // Garbage over every page but the first (the header and the schema): the file opens,
    // `SELECT 1` answers, and the keys table and its index are unreadable.
    const size = statSync(path).size;
    expect(size).toBeGreaterThan(8 * 4096);
    const fd = openSync(path, 'r+');
    let x = 0x2545f491;
    const junk = Buffer.alloc(size - 4096, 0);
    for (let i = 0; i < junk.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      junk[i] = x & 0xff;
    }
    writeSync(fd, junk, 0, junk.length, 4096);
    closeSync(fd);

    await boot(`sqlite:${path}`);
    const ready = await send(sidecar!.opsUrl, 'GET', '/readyz');
    expect(ready.status, ready.text).toBe(503);
    expect(ready.json.store).toMatchObject({ kind: 'sqlite', ok: false });
    expect(ready.json.store.error).toMatch(/malformed|corrupt|not a database/i);
    const refused = await send(sidecar!.url, 'GET', '/v1/devices', { headers: key(known) });
    expect(refused.status).toBe(503);
    expect(refused.json.error.code).toBe('STORE_UNAVAILABLE');
  });
});

describe('a SQLite file replaced under a running sidecar is reopened', () => {
  it('replaced by rename (cp keygate.db new && mv new keygate.db): revocations and new keys in the new file take effect', async () => {
    const dir = tempDir('kg-replace-');
    const store = `sqlite:${join(dir, 'keygate.db')}`;
    const a = createKey(store);
    await boot(store);
    expect(await statusWith(a.key)).toBe(200);

    execFileSync('sh', ['-c', 'cp keygate.db new && mv new keygate.db'], { cwd: dir });
    const replaced = Date.now();
    await until('the sidecar reopens the file', async () => sidecar!.logs.some((l) => l.change === 'reopened'));
    console.log(`[observation] file replaced by rename → reopened after ${Date.now() - replaced} ms`);
    cli(['keys', 'revoke', a.id, '--store', store]);
    const b = createKey(store);
    // SQLite copies the WAL into the file by itself (at 1,000 pages, or when the last
    // connection closes); doing it now shows at once what an old inode misses.
    execFileSync(process.execPath, ['-e', "new (require('node:sqlite').DatabaseSync)(process.argv[1]).exec('PRAGMA wal_checkpoint(TRUNCATE)')", join(dir, 'keygate.db')]);

    await until('the revoked key is refused and the new key accepted', async () => (await statusWith(a.key)) === 401 && (await statusWith(b.key)) === 200);
    expect((await send(sidecar!.opsUrl, 'GET', '/readyz')).status).toBe(200);
    expect(sidecar!.logs.some((l) => l.change === 'reopened')).toBe(true);
  });

  it('deleted, then restored: not ready while the path is missing (and says why), then reopened', async () => {
    const dir = tempDir('kg-restore-');
    const store = `sqlite:${join(dir, 'keygate.db')}`;
    const a = createKey(store);
    await boot(store);
    expect(await statusWith(a.key)).toBe(200);
    execFileSync('sh', ['-c', 'cp keygate.db backup.db'], { cwd: dir }); // nothing in the WAL: the CLI that wrote closed last

    execFileSync('sh', ['-c', 'rm keygate.db keygate.db-wal keygate.db-shm'], { cwd: dir });
    const deleted = Date.now();
    await until('/readyz says not ready', async () => (await send(sidecar!.opsUrl, 'GET', '/readyz')).status === 503);
    console.log(`[observation] file deleted → /readyz 503 after ${Date.now() - deleted} ms`);
    const missing = await send(sidecar!.opsUrl, 'GET', '/readyz');
    expect(missing.json.store.ok).toBe(false);
    expect(missing.json.store.error).toMatch(/keygate\.db no longer exists/);
    // Meanwhile the keys of the file it has open still work.
    expect(await statusWith(a.key)).toBe(200);

    execFileSync('sh', ['-c', 'cp backup.db keygate.db'], { cwd: dir });
    cli(['keys', 'revoke', a.id, '--store', store]);
    const b = createKey(store);

    await until('the revoked key is refused and the new key accepted', async () => (await statusWith(a.key)) === 401 && (await statusWith(b.key)) === 200);
    const back = await send(sidecar!.opsUrl, 'GET', '/readyz');
    expect(back.status, back.text).toBe(200);
    expect(sidecar!.logs.some((l) => l.change === 'missing')).toBe(true);
  });
});
