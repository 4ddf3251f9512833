// Invariants 7 + 8 on the shared PostgreSQL store: revocation reaches every replica within 5 s;
// a store outage never turns an unknown/revoked key into an accepted one.
// Skipped when no PostgreSQL answers on 127.0.0.1:5432 (CI starts one).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Backend, createKey, type KeyInfo, keyHeader, revokeKey, type Sidecar, send, sleep, startBackend, startSidecar, tempStore } from './harness.ts';

const PG = process.env.KEYGATE_BB_PG ?? 'postgres://postgres@127.0.0.1:5432';

function psql(sql: string, db = 'postgres'): string {
  return execFileSync('psql', [`${PG}/${db}`, '-v', 'ON_ERROR_STOP=1', '-Atc', sql], { encoding: 'utf8', timeout: 10_000 });
}

let pgUp = false;
try {
  psql('select 1');
  pgUp = true;
} catch {
  pgUp = false;
}

describe.skipIf(!pgUp)('shared PostgreSQL store', () => {
  const db = `kgbb_${process.pid}_${randomBytes(3).toString('hex')}`;
  const store = `${PG}/${db}`;
  let backend: Backend;
  let a: Sidecar;
  let b: Sidecar;
  let server: KeyInfo;
  let alice: KeyInfo;
  let bob: KeyInfo;

  beforeAll(async () => {
    psql(`create database ${db}`);
    backend = await startBackend();
    server = await createKey(store, 'server');
    alice = await createKey(store, 'scoped', 'alice');
    bob = await createKey(store, 'scoped', 'bob');
    [a, b] = await Promise.all([startSidecar({ upstream: backend.url, store }), startSidecar({ upstream: backend.url, store })]);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await backend?.close();
    try {
      psql(`alter database ${db} allow_connections true`);
      psql(`select pg_terminate_backend(pid) from pg_stat_activity where datname = '${db}'`);
      psql(`drop database if exists ${db}`);
    } catch {
      /* best effort */
    }
  });

  test('revoking via the CLI is refused by BOTH replicas within 5 s', async () => {
    const k = await createKey(store, 'scoped', 'alice');
    for (const s of [a, b]) for (let i = 0; i < 2; i++) expect((await send(s.proxyPort, { path: '/v1/devices', headers: keyHeader(k) })).status).toBe(200);
    await revokeKey(store, k.id);
    const t0 = Date.now();
    const done = new Map<Sidecar, number>();
    while (done.size < 2 && Date.now() - t0 < 7000) {
      for (const s of [a, b]) {
        if (done.has(s)) continue;
        const r = await send(s.proxyPort, { path: '/v1/devices', headers: keyHeader(k) });
        if (r.status === 401) done.set(s, Date.now() - t0);
      }
      await sleep(50);
    }
    console.log(`[observation] PG revocation seen by replicas after ${[...done.values()].join(' / ')} ms`);
    expect(done.get(a)).toBeDefined();
    expect(done.get(b)).toBeDefined();
    expect(Math.max(...done.values())).toBeLessThanOrEqual(5000);
  });

  test('store outage: unknown and never-seen keys are not accepted; warm keys may continue', async () => {
    const fresh = await createKey(store, 'server'); // valid, never used before the outage
    const revoked = await createKey(store, 'server');
    await send(a.proxyPort, { path: '/v1/devices', headers: keyHeader(revoked) });
    await revokeKey(store, revoked.id);
    await sleep(1500);
    const unknown = await createKey(tempStore(), 'server'); // well-formed, not in this store
    // warm
    expect((await send(a.proxyPort, { path: '/v1/devices', headers: keyHeader(bob) })).status).toBe(200);
    // outage: no new connections to this database, existing ones killed
    psql(`alter database ${db} allow_connections false`);
    psql(`select pg_terminate_backend(pid) from pg_stat_activity where datname = '${db}'`);
    await sleep(300);
    try {
      for (const s of [a, b]) {
        backend.reset();
        const u = await send(s.proxyPort, { path: '/v1/sites', headers: keyHeader(unknown), timeoutMs: 15_000 });
        expect([401, 503], `unknown key during outage: ${u.status} ${u.text}`).toContain(u.status);
        const f = await send(s.proxyPort, { path: '/v1/sites', headers: keyHeader(fresh), timeoutMs: 15_000 });
        expect([200, 401, 503], `fresh key: ${f.text}`).toContain(f.status);
        const r = await send(s.proxyPort, { path: '/v1/sites', headers: keyHeader(revoked), timeoutMs: 15_000 });
        expect([401, 503], `revoked key during outage: ${r.status} ${r.text}`).toContain(r.status);
        expect(backend.received.filter((x) => x.headers['x-keygate-key-id'] === revoked.id || x.headers['x-keygate-key-id'] === unknown.id)).toHaveLength(0);
        const garbage = await send(s.proxyPort, { path: '/v1/sites', headers: { 'texture-api-key': 'api_garbage' } });
        expect(garbage.status).toBe(401);
      }
    } finally {
      psql(`alter database ${db} allow_connections true`);
    }
    // recovers
    let st = 0;
    for (let i = 0; i < 50 && st !== 200; i++) {
      st = (await send(b.proxyPort, { path: '/v1/devices', headers: keyHeader(server) })).status;
      if (st !== 200) await sleep(200);
    }
    expect(st).toBe(200);
    expect((await send(b.proxyPort, { path: '/v1/devices', headers: keyHeader(alice) })).status).toBe(200);
  }, 60_000);
});
