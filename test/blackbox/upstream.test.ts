// 502 (backend down) and 504 (backend hangs) are JSON and bounded in time.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type RefusingUpstream, refusingUpstream } from '../helpers/refusing-upstream.ts';
import { type Backend, createKeySet, errorBody, type KeySet, keyHeader, type Sidecar, send, startBackend, startSidecar } from './harness.ts';

// Keygate's upstream timeouts are not part of the external contract; we only require
// "never a hang". Defaults: 10 s to the headers (observed ~10.5 s), 30 s of silence inside
// a body; the stalling backend's sidecar runs with --upstream-body-timeout 1500 so the
// stalled-body cases stay quick.
const BOUND_MS = 25_000;
const BODY_BOUND_MS = 8_000;

let keys: KeySet;
let hangBackend: Backend;
let hangSidecar: Sidecar;
let stallBackend: Backend;
let stallSidecar: Sidecar;
let downSidecar: Sidecar;
let down: RefusingUpstream;

beforeAll(async () => {
  keys = await createKeySet();
  [hangBackend, stallBackend] = await Promise.all([startBackend(), startBackend()]);
  hangBackend.hang = true;
  stallBackend.stallBody = true;
  down = await refusingUpstream();
  [hangSidecar, stallSidecar, downSidecar] = await Promise.all([
    startSidecar({ upstream: hangBackend.url, store: keys.store }),
    startSidecar({ upstream: stallBackend.url, store: keys.store, env: { KEYGATE_UPSTREAM_BODY_TIMEOUT: '1500' } }),
    startSidecar({ upstream: down.url, store: keys.store }),
  ]);
});
afterAll(async () => {
  await Promise.all([hangSidecar?.stop(), stallSidecar?.stop(), downSidecar?.stop()]);
  await Promise.all([hangBackend?.close(), stallBackend?.close(), down?.close()]);
});

describe('502 backend unreachable', () => {
  test.each([
    ['server list', 'server', '/v1/devices'],
    ['scoped list', 'alice', '/v1/devices'],
    ['scoped own device (owner lookup)', 'alice', '/v1/devices/dev-alice-1'],
    ['scoped command (owner lookup)', 'alice', '/v1/commands/thermostat/set'],
  ] as const)('%s → 502 JSON, fast', async (_n, who, path) => {
    const method = path.startsWith('/v1/commands/') ? 'POST' : 'GET';
    const r = await send(downSidecar.proxyPort, {
      method,
      path,
      body: method === 'POST' ? '{"deviceId":"dev-alice-1"}' : undefined,
      headers: { ...keyHeader(keys[who]), ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) },
    });
    expect(r.status, r.text).toBe(502);
    expect(errorBody(r).error.status).toBe(502);
    expect(r.ms).toBeLessThan(5000);
  });

  test('auth still happens first when the backend is down (401 not 502)', async () => {
    const r = await send(downSidecar.proxyPort, { path: '/v1/devices', headers: {} });
    expect(r.status).toBe(401);
  });
  test('forbidden still 403 when backend is down', async () => {
    const r = await send(downSidecar.proxyPort, { path: '/v1/sites', headers: keyHeader(keys.alice) });
    expect(r.status).toBe(403);
  });
});

describe('504 backend hangs (bounded)', () => {
  test.concurrent.each([
    ['server list', 'server', '/v1/devices'],
    ['scoped list', 'alice', '/v1/devices'],
    ['scoped own device (owner lookup hangs)', 'alice', '/v1/devices/dev-alice-2'],
  ] as const)(
    '%s → 504 JSON within bound',
    async (_n, who, path) => {
      const r = await send(hangSidecar.proxyPort, { path, headers: keyHeader(keys[who]), timeoutMs: BOUND_MS + 5000 });
      console.log(`[observation] 504 for ${path} (${who}) after ${Math.round(r.ms)} ms`);
      expect(r.status, r.text).toBe(504);
      expect(errorBody(r).error.status).toBe(504);
      expect(r.ms).toBeLessThan(BOUND_MS);
    },
    BOUND_MS + 10_000,
  );

  test.concurrent(
    'scoped command whose owner lookup hangs → 504, command never sent',
    async () => {
      const r = await send(hangSidecar.proxyPort, {
        method: 'POST',
        path: '/v1/commands/t/a',
        body: '{"deviceId":"dev-alice-1"}',
        headers: { ...keyHeader(keys.alice), 'content-type': 'application/json' },
        timeoutMs: BOUND_MS + 5000,
      });
      expect([502, 504], r.text).toContain(r.status);
      expect(r.ms).toBeLessThan(BOUND_MS);
      expect(hangBackend.received.filter((x) => x.method === 'POST')).toHaveLength(0);
    },
    BOUND_MS + 10_000,
  );

  test.concurrent(
    'scoped list where backend sends headers then stalls the body → error, bounded, no leak',
    async () => {
      const t0 = performance.now();
      let status = 0;
      let text = '';
      try {
        const r = await send(stallSidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(keys.alice), timeoutMs: BODY_BOUND_MS + 5000 });
        status = r.status;
        text = r.text;
      } catch (e) {
        text = String(e); // connection aborted mid-body is acceptable
      }
      const ms = performance.now() - t0;
      console.log(`[observation] stalled-body scoped list ended after ${Math.round(ms)} ms with ${status} ${text.slice(0, 120)}`);
      expect(ms).toBeLessThan(BODY_BOUND_MS);
      expect(status).not.toBe(200);
      expect(text).not.toMatch(/dev-alice-1/); // a half body is never relayed to a scoped client
    },
    BODY_BOUND_MS + 10_000,
  );

  test.concurrent(
    'server request where backend sends headers then stalls the body → connection ends, bounded',
    async () => {
      const t0 = performance.now();
      try {
        await send(stallSidecar.proxyPort, { path: '/v1/devices/dev-alice-1', headers: keyHeader(keys.server), timeoutMs: BODY_BOUND_MS + 5000 });
      } catch {
        /* aborted mid-body: fine */
      }
      const ms = performance.now() - t0;
      console.log(`[observation] stalled-body server read ended after ${Math.round(ms)} ms`);
      expect(ms).toBeLessThan(BODY_BOUND_MS);
    },
    BODY_BOUND_MS + 10_000,
  );
});
