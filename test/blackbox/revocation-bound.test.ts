// Invariant 7, measured: a key revoked through one sidecar's API (or the CLI, another
// process) is refused by another sidecar on the same store within a second, pushed to it
// (PostgreSQL NOTIFY; SQLite's change feed), not waited out: both sidecars run with the
// longest key cache TTL (5 s), so the TTL alone would take up to 5 s. 20 trials per store;
// the figures (p50, p99, max) are printed and quoted in docs/keys.md (the README gives the bound).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { pgSchemas } from '../helpers/pg-schemas.ts';
import { apiOf, cli, cliKey } from './api-keys-suite.ts';
import { type Backend, keyHeader, type Sidecar, send, sleep, startBackend, startSidecar, tempStore } from './harness.ts';

const TRIALS = 20;
const BOUND_MS = 1_000;
const schemas = pgSchemas('bbrevoke');
afterAll(() => schemas.drop());

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

/** Polls `sidecar` with `key` until it answers 401; the time from `since`, in ms. */
async function refusedAfter(sidecar: Sidecar, key: string, since: number): Promise<number> {
  for (;;) {
    const r = await send(sidecar.proxyPort, { path: '/v1/sites', headers: keyHeader(key) });
    if (r.status === 401) return performance.now() - since;
    if (r.status !== 200) throw new Error(`unexpected ${r.status} ${r.text}`);
    if (performance.now() - since > 10_000) throw new Error('still accepted after 10 s');
    await sleep(5);
  }
}

for (const [kind, newStore] of [
  ['SQLite', async () => tempStore()],
  ['PostgreSQL', async () => schemas.url('store')],
] as const) {
  describe(`revocation reaches every sidecar on ${kind} within ${BOUND_MS} ms`, () => {
    let backend: Backend;
    let a: Sidecar;
    let b: Sidecar;
    let store: string;
    let admin: { id: string; key: string };
    const api = apiOf(() => a);

    beforeAll(async () => {
      backend = await startBackend();
      store = await newStore();
      admin = await cliKey(store, ['--type', 'server']);
      const env = { KEYGATE_KEY_CACHE_TTL: '5000', KEYGATE_ACCESS_LOG: 'false' };
      [a, b] = await Promise.all([startSidecar({ upstream: backend.url, store, env }), startSidecar({ upstream: backend.url, store, env })]);
    });
    afterAll(async () => {
      await Promise.all([a?.stop(), b?.stop()]);
      await backend?.close();
    });

    test(`${TRIALS} revocations through sidecar A's API, refused by sidecar B`, async () => {
      const times: number[] = [];
      for (let i = 0; i < TRIALS + 2; i++) {
        const k = (await api('POST', '/v1/api-keys', admin.key, { type: 'server', name: `trial ${i}` })).json as { id: string; key: string };
        // Cached on B (a hit from now on, trusted for 5 s without a push).
        for (let j = 0; j < 2; j++) expect((await send(b.proxyPort, { path: '/v1/sites', headers: keyHeader(k.key) })).status).toBe(200);
        const revoked = await api('DELETE', `/v1/api-keys/${k.id}`, admin.key);
        expect(revoked.status).toBe(200);
        const ms = await refusedAfter(b, k.key, performance.now());
        if (i >= 2) times.push(ms); // the first two warm both processes up
        expect((await send(a.proxyPort, { path: '/v1/sites', headers: keyHeader(k.key) })).status).toBe(401);
      }
      const sorted = [...times].sort((x, y) => x - y);
      const p50 = quantile(sorted, 0.5);
      const p99 = quantile(sorted, 0.99);
      const max = sorted[sorted.length - 1]!;
      console.log(`[measurement] revocation ${kind}, API on A -> refused on B, ${TRIALS} trials: p50 ${p50.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms, max ${max.toFixed(0)} ms`);
      expect(p50).toBeLessThanOrEqual(BOUND_MS);
      // A loaded machine may stall one poll; more than one trial past the bound is a failure of the push.
      expect(times.filter((t) => t > BOUND_MS).length).toBeLessThanOrEqual(1);
    }, 120_000);

    test('a revocation by the CLI (another process) is refused by both sidecars within the bound', async () => {
      const k = (await api('POST', '/v1/api-keys', admin.key, { type: 'server' })).json as { id: string; key: string };
      for (const s of [a, b]) expect((await send(s.proxyPort, { path: '/v1/sites', headers: keyHeader(k.key) })).status).toBe(200);
      await cli(['keys', 'revoke', k.id, '--store', store]);
      const started = performance.now();
      const [ma, mb] = await Promise.all([refusedAfter(a, k.key, started), refusedAfter(b, k.key, started)]);
      console.log(`[measurement] revocation ${kind}, CLI -> refused on A ${ma.toFixed(0)} ms, on B ${mb.toFixed(0)} ms`);
      expect(Math.max(ma, mb)).toBeLessThanOrEqual(BOUND_MS);
    }, 30_000);

    test('a rotation without grace and a change of a key reach the other sidecar too', async () => {
      const k = (await api('POST', '/v1/api-keys', admin.key, { type: 'server' })).json as { id: string; key: string };
      expect((await send(b.proxyPort, { path: '/v1/sites', headers: keyHeader(k.key) })).status).toBe(200);
      const rotated = (await api('POST', `/v1/api-keys/${k.id}/rotate`, admin.key, {})).json as { key: string };
      expect(await refusedAfter(b, k.key, performance.now())).toBeLessThanOrEqual(BOUND_MS);
      expect((await send(b.proxyPort, { path: '/v1/sites', headers: keyHeader(rotated.key) })).status).toBe(200);
      // An expiry set through A ends the key on B at that time, not at B's TTL.
      const soon = new Date(Date.now() + 1_500).toISOString();
      expect((await api('PATCH', `/v1/api-keys/${k.id}`, admin.key, { expiresAt: soon })).status).toBe(200);
      const ms = await refusedAfter(b, rotated.key, performance.now());
      expect(ms).toBeLessThanOrEqual(1_500 + BOUND_MS);
    }, 30_000);
  });
}
