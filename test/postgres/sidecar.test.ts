// The shared PostgreSQL store end to end: real sidecar processes (bin/keygate.js serve),
// keys created and revoked with the real CLI (other processes), real HTTP.
// The run uses its own schema (`?schema=` in the store URL) and drops it afterwards.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type DemoBackend, startDemoBackend } from '../../src/demo/backend.ts';
import { mintKey } from '../../src/keys/mint-key.ts';
import { key, send } from '../helpers/http.ts';
import { BIN, ROOT, type Sidecar, startSidecar } from '../helpers/sidecar.ts';

const PG_BASE = process.env.KEYGATE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const SCHEMA = `kg_test_${process.pid}_${randomBytes(4).toString('hex')}_sidecar`;
const APP = `kgtest_${randomBytes(4).toString('hex')}`;
const STORE = `${PG_BASE}?schema=${SCHEMA}&application_name=${APP}`;
const UNREACHABLE = 'postgres://postgres@127.0.0.1:1/test?schema=kg_unreachable';

interface CreatedKey {
  id: string;
  key: string;
  type: string;
  referenceId: string | null;
}

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function createKey(referenceId: string): CreatedKey {
  const r = cli(['keys', 'create', '--type', 'scoped', '--reference-id', referenceId, '--store', STORE, '--json']);
  expect(r.status, r.stderr).toBe(0);
  const created = JSON.parse(r.stdout) as CreatedKey;
  expect(created).toMatchObject({ type: 'scoped', referenceId });
  expect(created.key).toMatch(/^scoped_/);
  return created;
}

let admin: pg.Client;
let backend: DemoBackend;
const sidecars: Sidecar[] = [];
const extraBackends: DemoBackend[] = [];

async function sidecar(store: string, upstream = backend.url): Promise<Sidecar> {
  // The longest cache TTL the CLI allows: a refusal well inside it can only come from NOTIFY.
  const s = await startSidecar({ upstream, store, args: ['--key-cache-ttl', '5000'] });
  sidecars.push(s);
  return s;
}

/** Waits until `count` sidecars of this run hold a LISTEN connection on the store. */
async function listenersUp(count: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { rows } = await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND query ILIKE 'LISTEN%'", [`${APP}:listen`]);
    if (rows[0]!.n >= count) return;
    if (Date.now() > deadline) throw new Error(`only ${rows[0]!.n} of ${count} sidecars are listening`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  admin = new pg.Client({ connectionString: PG_BASE });
  await admin.connect();
  backend = await startDemoBackend();
});

afterEach(async () => {
  await Promise.all(sidecars.splice(0).map((s) => s.stop()));
  await Promise.all(extraBackends.splice(0).map((b) => b.close()));
});

afterAll(async () => {
  await Promise.all(sidecars.splice(0).map((s) => s.stop('SIGKILL')));
  await backend?.close();
  await admin?.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
  await admin?.end();
});

describe('sidecar on the PostgreSQL store', () => {
  it('serves a scoped key from the shared store and refuses it on every replica soon after the CLI revokes it', async () => {
    const alice = createKey('alice');
    const bob = createKey('bob');
    const listed = cli(['keys', 'list', '--store', STORE, '--json']);
    expect(listed.status, listed.stderr).toBe(0);
    const ids = listed.stdout
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as CreatedKey).id); // JSON Lines
    expect(ids).toEqual(expect.arrayContaining([alice.id, bob.id]));

    const [a, b] = await Promise.all([sidecar(STORE), sidecar(STORE)]);
    for (const s of [a!, b!]) {
      const ready = await send(s.opsUrl, 'GET', '/readyz');
      expect(ready.status).toBe(200);
      expect(ready.json.store).toMatchObject({ kind: 'postgres', ok: true });

      const res = await send(s.url, 'GET', '/v1/devices', { headers: key(alice.key) });
      expect(res.status).toBe(200);
      const devices = res.json.data as Array<{ id: string; referenceId: string }>;
      expect(devices.length).toBeGreaterThan(0);
      expect(devices.every((d) => d.referenceId === 'alice')).toBe(true);
      const forwarded = backend.received.at(-1)!;
      expect(forwarded.query.getAll('referenceId')).toEqual(['alice']);
      expect(forwarded.headers['texture-api-key']).toBeUndefined();
    }
    await listenersUp(2);

    // Another process revokes the key; both running replicas must refuse it (their caches hold it for 5 s).
    const revoked = cli(['keys', 'revoke', alice.id, '--store', STORE]);
    expect(revoked.status, revoked.stderr).toBe(0);
    // The CLI cannot know the replicas' TTL (here 5 s): it names the flag, not a figure it cannot know.
    expect(revoked.stdout).toMatch(/notified now; if a notification is lost, each refuses it within its --key-cache-ttl \(2 s by default, at most 5 s\)/);
    const started = performance.now();
    const refusedAfter = await Promise.all(
      [a!, b!].map(async (s) => {
        for (;;) {
          const res = await send(s.url, 'GET', '/v1/devices', { headers: key(alice.key) });
          if (res.status === 401) {
            expect(res.json.error.status).toBe(401);
            return performance.now() - started;
          }
          expect(res.status).toBe(200);
          if (performance.now() - started > 6_000) return Infinity;
          await new Promise((r) => setTimeout(r, 10));
        }
      }),
    );
    for (const ms of refusedAfter) {
      expect(ms).toBeLessThan(5_000);
      expect(ms).toBeLessThan(2_000);
    }

    // Stays refused, and other keys are unaffected.
    const before = backend.received.length;
    for (const s of [a!, b!]) {
      expect((await send(s.url, 'GET', '/v1/devices', { headers: key(alice.key) })).status).toBe(401);
      const res = await send(s.url, 'GET', '/v1/devices', { headers: key(bob.key) });
      expect(res.status).toBe(200);
      expect((res.json.data as Array<{ referenceId: string }>).every((d) => d.referenceId === 'bob')).toBe(true);
    }
    expect(backend.received.length).toBe(before + 2);
    expect(a!.proc.exitCode).toBeNull();
    expect(b!.proc.exitCode).toBeNull();
    // SIGTERM drains and closes the pool and the LISTEN connection: a clean exit.
    expect(await Promise.all([a!.stop(), b!.stop()])).toEqual([0, 0]);
  });

  it('a key created by the CLI while sidecars run is accepted, and revoking an unknown id fails', async () => {
    const s = await sidecar(STORE);
    const carol = createKey('carol');
    const res = await send(s.url, 'GET', '/v1/devices', { headers: key(carol.key) });
    expect(res.status).toBe(200);
    const r = cli(['keys', 'revoke', 'key_doesNotExist000', '--store', STORE]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no key with id/);
  });

  it('starts with the database unreachable, reports not ready and never admits an unknown key', async () => {
    const isolated = await startDemoBackend();
    extraBackends.push(isolated);
    const started = performance.now();
    const s = await sidecar(UNREACHABLE, isolated.url);
    expect(performance.now() - started).toBeLessThan(10_000);

    expect((await send(s.opsUrl, 'GET', '/healthz')).status).toBe(200);
    const ready = await send(s.opsUrl, 'GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.json.store).toMatchObject({ kind: 'postgres', ok: false });

    // Well-formed (prefix and checksum pass) but in no store: the store must be asked, and it cannot answer.
    for (const type of ['scoped', 'server'] as const) {
      const unknown = mintKey(type === 'scoped' ? { type, referenceId: 'alice' } : { type }).key;
      const t0 = performance.now();
      const res = await send(s.url, 'GET', '/v1/devices', { headers: key(unknown) });
      expect(performance.now() - t0).toBeLessThan(3_000);
      expect(res.status).toBe(503);
      expect(res.headers['content-type']).toMatch(/application\/json/);
      expect(res.json.error.code).toBe('STORE_UNAVAILABLE');
      // Asked again: still refused (an outage is never cached as an answer, never turned into admission).
      const again = await send(s.url, 'GET', '/v1/devices', { headers: key(unknown) });
      expect(again.status).toBe(503);
    }
    // A malformed key is refused without the store.
    expect((await send(s.url, 'GET', '/v1/devices', { headers: key('scoped_garbage') })).status).toBe(401);
    expect(isolated.received).toEqual([]);
    expect(s.proc.exitCode).toBeNull();
    expect(s.stdout() + s.stderr()).not.toMatch(/unhandled|uncaught/i);
    // Shutting down while the LISTEN connection is still retrying does not hang.
    const t0 = performance.now();
    expect(await s.stop()).toBe(0);
    expect(performance.now() - t0).toBeLessThan(5_000);
  });
});
