// PostgreSQL key store against the real server on 127.0.0.1:5432 (database `test`, trust auth).
// Every run works in its own schema (`?schema=` in the store URL) and drops it afterwards,
// so parallel runs and other test files never see each other's keys.
import { randomBytes } from 'node:crypto';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { hashKey } from '../../src/keys/key-format.ts';
import { mintKey } from '../../src/keys/mint-key.ts';
import { openStore } from '../../src/keys/open-store.ts';
import { PostgresKeyStore } from '../../src/keys/postgres-store.ts';
import { StoreNotFoundError, UnknownKeyError } from '../../src/keys/store.ts';
import { bulkKeyId, bulkPostgresKeys } from '../helpers/bulk-keys.ts';

const PG_BASE = process.env.KEYGATE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const RUN = `kg_test_${process.pid}_${randomBytes(4).toString('hex')}`;
const SCHEMA = `${RUN}_store`;
const storeUrl = (schema = SCHEMA, base = PG_BASE, extra = ''): string => `${base}?schema=${schema}${extra}`;

let admin: pg.Client;
const schemas = new Set<string>([SCHEMA]);
const stores: PostgresKeyStore[] = [];
const relays: Array<{ server: Server; cut(): void }> = [];

async function open(url = storeUrl()): Promise<PostgresKeyStore> {
  const store = await PostgresKeyStore.connect(url);
  stores.push(store);
  return store;
}

async function newKey(store: PostgresKeyStore, input: Parameters<typeof mintKey>[0] = { type: 'scoped', referenceId: 'alice' }) {
  const { record, key } = mintKey(input);
  await store.insert(record, hashKey(key));
  return { record, key, hash: hashKey(key) };
}

async function elapsed<T>(promise: Promise<T>): Promise<{ ms: number; result: PromiseSettledResult<T> }> {
  const started = performance.now();
  const [result] = await Promise.allSettled([promise]);
  return { ms: performance.now() - started, result: result! };
}

/** A TCP relay in front of PostgreSQL that the test can start late and cut, to play a database outage. */
async function relay(port: number): Promise<{ server: Server; sockets: Set<Socket>; cut(): void }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = netConnect(5432, '127.0.0.1');
    sockets.add(client).add(upstream);
    const done = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', done).on('close', done);
    upstream.on('error', done).on('close', done);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const handle = {
    server,
    sockets,
    cut() {
      for (const s of [...sockets]) s.destroy();
    },
  };
  relays.push(handle);
  return handle;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  admin = new pg.Client({ connectionString: PG_BASE });
  await admin.connect();
});

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  for (const r of relays.splice(0)) {
    r.server.close();
    r.cut();
  }
});

afterAll(async () => {
  for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
});

describe('PostgresKeyStore', () => {
  it('ping (readiness) runs a real lookup on the table: it fails once the table is gone, where SELECT 1 did not', async () => {
    const schema = `${RUN}_ping`;
    schemas.add(schema);
    const store = await open(storeUrl(schema));
    await store.ping(); // an empty table: the lookup of a hash no key has
    await newKey(store);
    await store.ping(); // a key read back through the key_hash index
    await admin.query(`DROP TABLE "${schema}".keygate_keys`);
    await expect(store.ping()).rejects.toThrow(/keygate_keys.*does not exist/);
  });

  it('creates its table and round-trips insert, find, list and revoke', async () => {
    const store = await open();
    expect(store.kind).toBe('postgres');
    expect(store.schemaReady).toBe(true);
    const alice = await newKey(store, { type: 'scoped', referenceId: 'alice', name: 'alice phone' });
    const token = await newKey(store, { type: 'access-token', roles: ['reader'], conditions: ['factoryId:f1', 'factoryId:f2', 'site:s1'], expiresInMs: 60_000 });

    expect(await store.findByHash(alice.hash)).toEqual({ ...alice.record, secretExpiresAt: null });
    expect(await store.findByHash(token.hash)).toEqual({ ...token.record, secretExpiresAt: null });
    expect(await store.get(alice.record.id)).toEqual(alice.record);
    expect((await store.findByHash(token.hash))?.conditions).toEqual({ factoryId: ['f1', 'f2'], site: ['s1'] });
    expect(await store.findByHash(hashKey('api_not_a_stored_key'))).toBeUndefined();

    const listed = await store.list({ limit: 100 });
    expect(listed.map((k) => k.id)).toEqual(expect.arrayContaining([alice.record.id, token.record.id]));
    expect(listed.find((k) => k.id === alice.record.id)).toEqual(alice.record);

    const before = Date.now();
    expect(await store.revoke(alice.record.id)).toBe(true);
    const revoked = await store.findByHash(alice.hash);
    expect(revoked?.revokedAt).not.toBeNull();
    expect(Math.abs(Date.parse(revoked!.revokedAt!) - before)).toBeLessThan(60_000);
    expect({ ...revoked, revokedAt: null, updatedAt: alice.record.updatedAt }).toEqual({ ...alice.record, secretExpiresAt: null });
    expect((await store.findByHash(token.hash))?.revokedAt).toBeNull();

    // The CLI path: openStore() picks this store for postgres:// and postgresql:// URLs.
    const viaOpen = await openStore(storeUrl().replace(/^postgres:/, 'postgresql:'), { create: false });
    try {
      expect(viaOpen.kind).toBe('postgres');
      expect((await viaOpen.findByHash(alice.hash))?.revokedAt).toBe(revoked!.revokedAt);
    } finally {
      await viaOpen.close();
    }
  });

  it('stores only the SHA-256 hash, never the plaintext key', async () => {
    const store = await open();
    const { record, key, hash } = await newKey(store, { type: 'server', name: 'backend' });
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    const { rows } = await admin.query<{ row: string; key_hash: string }>(`SELECT row_to_json(t)::text AS row, t.key_hash FROM "${SCHEMA}".keygate_keys t WHERE id = $1`, [record.id]);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.key_hash).toBe(hash);
    const body = key.slice('api_'.length);
    const { rows: all } = await admin.query<{ dump: string }>(`SELECT coalesce(string_agg(row_to_json(t)::text, E'\\n'), '') AS dump FROM "${SCHEMA}".keygate_keys t`);
    expect(all[0]!.dump).toContain(hash);
    expect(all[0]!.dump).not.toContain(key);
    expect(all[0]!.dump).not.toContain(body);
    expect(all[0]!.dump).not.toContain(body.slice(0, 16));
  });

  it('refuses a second key with the same hash (unique key_hash index)', async () => {
    const store = await open();
    const { key } = await newKey(store);
    const other = mintKey({ type: 'scoped', referenceId: 'bob' });
    await expect(store.insert(other.record, hashKey(key))).rejects.toThrow(/duplicate key|unique/i);
  });

  it('keeps the first revocation time when a key is revoked twice, and answers false for an unknown id', async () => {
    const store = await open();
    const { record, hash } = await newKey(store);
    expect(await store.revoke(record.id)).toBe(true);
    const first = (await store.findByHash(hash))!.revokedAt;
    expect(first).not.toBeNull();
    await new Promise((r) => setTimeout(r, 20));
    expect(await store.revoke(record.id)).toBe(true);
    expect((await store.findByHash(hash))!.revokedAt).toBe(first);
    expect(await store.revoke('key_doesNotExist000')).toBe(false);
  });

  it('pushes a revocation made by another store instance (another process) to onChange', async () => {
    const replica = await open();
    const cli = await open();
    const { record } = await newKey(cli);
    const other = await newKey(cli);
    const seen: string[] = [];
    replica.onChange((c) => seen.push(...(c.kind === 'keys' ? c.ids : ['*'])));
    await vi.waitFor(() => expect(replica.listening).toBe(true), { timeout: 5_000, interval: 20 });

    const started = performance.now();
    expect(await cli.revoke(record.id)).toBe(true);
    await vi.waitFor(() => expect(seen).toContain(record.id), { timeout: 2_000, interval: 5 });
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(seen).not.toContain(other.record.id);
    // An unknown id notifies nobody.
    expect(await cli.revoke('key_doesNotExist000')).toBe(false);
    await new Promise((r) => setTimeout(r, 100));
    expect(seen.filter((h) => h !== record.id)).toEqual([]);
  });

  it('lets many processes create the schema at once', async () => {
    const fresh = `${RUN}_race`;
    schemas.add(fresh);
    const racers = await Promise.all(Array.from({ length: 6 }, () => open(storeUrl(fresh))));
    expect(racers.every((s) => s.schemaReady)).toBe(true);
    const { hash, record } = await newKey(racers[0]!);
    for (const s of racers) expect((await s.findByHash(hash))?.id).toBe(record.id);
  });

  it('lists a page at a time in creation order (ties by id), by type or referenceId, after a key', async () => {
    const fresh = `${RUN}_list`;
    schemas.add(fresh);
    const store = await open(storeUrl(fresh));
    await bulkPostgresKeys(PG_BASE, `"${fresh}".keygate_keys`, 25);
    const seen: string[] = [];
    for (let afterId: string | undefined, pages = 0; pages < 10; pages++) {
      const page = await store.list({ afterId, limit: 7 });
      seen.push(...page.map((k) => k.id));
      if (page.length < 7) break;
      afterId = page[page.length - 1]!.id;
    }
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => bulkKeyId(i + 1)));
    expect((await store.list({ type: 'server', limit: 100 })).map((k) => k.id)).toEqual([4, 8, 12, 16, 20, 24].map(bulkKeyId));
    expect((await store.list({ type: 'server', afterId: bulkKeyId(12), limit: 2 })).map((k) => k.id)).toEqual([16, 20].map(bulkKeyId));
    expect((await store.list({ referenceId: 'user7', limit: 100 })).map((k) => k.id)).toEqual([bulkKeyId(7)]);
    await expect(store.list({ afterId: 'key_nope', limit: 1 })).rejects.toBeInstanceOf(UnknownKeyError);
    const indexes = await admin.query('SELECT indexname FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname', [fresh]);
    expect(indexes.rows.map((r: { indexname: string }) => r.indexname).filter((n: string) => n.startsWith('keygate_keys'))).toEqual([
      'keygate_keys_created_by',
      'keygate_keys_expiry_due',
      'keygate_keys_key_hash',
      'keygate_keys_listing',
      'keygate_keys_pkey',
      'keygate_keys_reference',
    ]);
  });

  it('a store opened without create (keys list, keys revoke) fails on a missing table and creates nothing', async () => {
    const missing = `${RUN}_missing`;
    schemas.add(missing);
    const store = await openStore(storeUrl(missing), { create: false });
    try {
      await expect(store.list({ limit: 1 })).rejects.toBeInstanceOf(StoreNotFoundError);
      await expect(store.revoke('key_x')).rejects.toThrow(/has no table "[^"]+_missing".keygate_keys/);
    } finally {
      await store.close();
    }
    const found = await admin.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [missing]);
    expect(found.rows).toHaveLength(0);
  });

  it('rejects a malformed schema name instead of putting it into SQL', async () => {
    await expect(PostgresKeyStore.connect(`${PG_BASE}?schema=x";drop`)).rejects.toThrow(/schema/);
    await expect(PostgresKeyStore.connect(`${PG_BASE}?schema=a&schema=b`)).rejects.toThrow(/schema/);
  });

  it('starts against an unreachable database, rejects every query quickly and never hangs', async () => {
    const connected = await elapsed(PostgresKeyStore.connect('postgres://postgres@127.0.0.1:1/test?schema=kg_unreachable'));
    expect(connected.result.status).toBe('fulfilled');
    expect(connected.ms).toBeLessThan(2_500);
    const store = (connected.result as PromiseFulfilledResult<PostgresKeyStore>).value;
    stores.push(store);
    expect(store.schemaReady).toBe(false);
    const seen: string[] = [];
    store.onChange((c) => seen.push(c.kind)); // keeps retrying in the background, silently

    const calls: Array<() => Promise<unknown>> = [
      () => store.findByHash(hashKey('api_x')),
      () => store.ping(),
      () => store.list({ limit: 100 }),
      () => store.revoke('key_x'),
      () => store.insert(mintKey({ type: 'server' }).record, hashKey('api_y')),
    ];
    for (const call of calls) {
      const { ms, result } = await elapsed(call());
      expect(result.status).toBe('rejected');
      expect(ms).toBeLessThan(2_500);
    }
    await expect(store.ping()).rejects.toThrow(/ECONNREFUSED/);
    await new Promise((r) => setTimeout(r, 300));
    expect(store.listening).toBe(false);
    const closing = await elapsed(store.close());
    expect(closing.ms).toBeLessThan(1_500);
    await expect(store.findByHash(hashKey('api_x'))).rejects.toThrow();
  });

  it('creates the schema lazily once the database appears, and re-LISTENs after the connection drops', async () => {
    const fresh = `${RUN}_lazy`;
    schemas.add(fresh);
    const port = await freePort();
    const url = storeUrl(fresh, `postgres://postgres@127.0.0.1:${port}/test`, '&application_name=kgtest_lazy');
    const store = await open(url);
    expect(store.schemaReady).toBe(false);
    await expect(store.ping()).rejects.toThrow();
    const seen: string[] = [];
    store.onChange((c) => seen.push(...(c.kind === 'keys' ? c.ids : ['*'])));

    // The database comes up: the next query creates the table, the listener connects.
    const db = await relay(port);
    await vi.waitFor(
      async () => {
        await store.ping();
      },
      { timeout: 5_000, interval: 50 },
    );
    expect(store.schemaReady).toBe(true);
    await vi.waitFor(() => expect(store.listening).toBe(true), { timeout: 10_000, interval: 20 });
    const direct = await open(storeUrl(fresh));
    const first = await newKey(direct);
    await direct.revoke(first.record.id);
    await vi.waitFor(() => expect(seen).toContain(first.record.id), { timeout: 2_000, interval: 5 });

    // The connection drops (database restart, network cut): no crash, queries fail then recover, LISTEN comes back.
    db.cut();
    await vi.waitFor(() => expect(store.listening).toBe(false), { timeout: 2_000, interval: 5 });
    await vi.waitFor(() => expect(store.listening).toBe(true), { timeout: 10_000, interval: 20 });
    await vi.waitFor(
      async () => {
        await store.ping();
      },
      { timeout: 5_000, interval: 50 },
    );
    const second = await newKey(direct);
    await direct.revoke(second.record.id);
    await vi.waitFor(() => expect(seen).toContain(second.record.id), { timeout: 2_000, interval: 5 });
    // After the LISTEN connection came back, the listener was told that anything may have changed meanwhile.
    expect(seen).toContain('*');
    expect((await store.findByHash(second.hash))?.revokedAt).not.toBeNull();

    // It goes away for good: every query rejects, nothing throws out of the store.
    db.server.close();
    db.cut();
    await expect(store.ping()).rejects.toThrow();
    await vi.waitFor(() => expect(store.listening).toBe(false), { timeout: 2_000, interval: 5 });
  }, 40_000);
});
