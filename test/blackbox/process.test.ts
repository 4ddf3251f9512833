// Attacks 9 + 10: logs never hold a secret, one access line per request; SIGTERM drains.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Backend, createKey, createKeySet, type KeyInfo, type KeySet, keyHeader, rawSend, revokeKey, type Sidecar, send, sleep, startBackend, startSidecar } from './harness.ts';

let backend: Backend;
let keys: KeySet;

beforeAll(async () => {
  backend = await startBackend();
  keys = await createKeySet();
});
afterAll(async () => {
  await backend?.close();
});

function requestIdOf(h: Record<string, unknown>): string | undefined {
  const e = Object.entries(h).find(([k]) => /request-id/i.test(k));
  return e ? String(e[1]) : undefined;
}

describe('logs', () => {
  let sidecar: Sidecar;
  let revoked: KeyInfo;
  const sentIds: string[] = [];

  beforeAll(async () => {
    revoked = await createKey(keys.store, 'server');
    sidecar = await startSidecar({ upstream: backend.url, store: keys.store });
    // Exercise every path with every key, in ways that tempt a logger.
    const all = [keys.server, keys.connect, keys.alice, keys.bob, revoked];
    const track = (p: Promise<{ headers: Record<string, unknown> }>) =>
      p.then((r) => {
        const id = requestIdOf(r.headers);
        if (id) sentIds.push(id);
        return r;
      });
    for (const k of all) {
      await track(send(sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(k) }));
      await track(send(sidecar.proxyPort, { path: '/v1/devices/dev-bob-1', headers: keyHeader(k) }));
      await track(send(sidecar.proxyPort, { path: '/v1/sites', headers: keyHeader(k) }));
      await track(
        send(sidecar.proxyPort, {
          method: 'POST',
          path: '/v1/commands/t/a',
          body: JSON.stringify({ deviceId: 'dev-alice-1', note: k.key }),
          headers: { ...keyHeader(k), 'content-type': 'application/json' },
        }),
      );
      await track(send(sidecar.proxyPort, { method: 'POST', path: '/v1/commands/t/a', body: '{"deviceId":"x","deviceId":"y"}', headers: { ...keyHeader(k), 'content-type': 'application/json' } }));
      await track(send(sidecar.proxyPort, { path: '/v1/devices/a%2Fb', headers: keyHeader(k) }));
      // key in places a careless logger might print
      await track(send(sidecar.proxyPort, { path: `/v1/devices?texture_scoped_key=${encodeURIComponent(k.key)}`, headers: keyHeader(k) }));
      await track(send(sidecar.proxyPort, { path: '/v1/devices', headers: { authorization: `Bearer ${k.key}`, 'x-api-key': k.key } }));
      await track(send(sidecar.proxyPort, { path: '/v1/devices', headers: { 'texture-api-key': k.key + 'Z' } }));
      await track(send(sidecar.proxyPort, { path: '/v1/devices', headers: { 'texture-api-key': `${k.key}, ${k.key}` } }));
    }
    await revokeKey(keys.store, revoked.id);
    await sleep(200);
    await track(send(sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(revoked) }));
    // let the pipe drain
    for (let i = 0; i < 40 && sidecar.logs().filter((l) => l.msg === 'access').length < sentIds.length; i++) await sleep(50);
  });
  afterAll(async () => {
    await sidecar?.stop();
  });

  test('no secret (full key or its body) appears in stdout/stderr', async () => {
    const out = sidecar.stdout() + '\n' + sidecar.stderr();
    for (const k of [keys.server, keys.connect, keys.alice, keys.bob, revoked]) {
      const body = k.key.slice(k.key.indexOf('_') + 1);
      expect(out.includes(k.key), `full ${k.type} key in logs`).toBe(false);
      expect(out.includes(body), `${k.type} key body in logs`).toBe(false);
      expect(out.includes(encodeURIComponent(k.key)), `url-encoded ${k.type} key in logs`).toBe(false);
      // any 16-char window of the secret body
      for (let i = 0; i + 16 <= body.length; i += 4) expect(out.includes(body.slice(i, i + 16)), `fragment of ${k.type} key`).toBe(false);
    }
  });

  test('no secret in /metrics', async () => {
    const m = await send(sidecar.opsPort, { path: '/metrics' });
    expect(m.status).toBe(200);
    for (const k of [keys.server, keys.connect, keys.alice, keys.bob, revoked]) {
      expect(m.text).not.toContain(k.key.slice(k.key.indexOf('_') + 1, k.key.indexOf('_') + 17));
    }
  });

  test('exactly one access line per request', () => {
    const access = sidecar.logs().filter((l) => l.msg === 'access');
    expect(sentIds.length).toBeGreaterThan(40);
    expect(new Set(sentIds).size).toBe(sentIds.length);
    for (const id of sentIds) {
      const lines = access.filter((l) => Object.values(l).includes(id));
      expect(lines.length, `access lines for request ${id}`).toBe(1);
    }
    expect(access.length).toBe(sentIds.length);
  });

  test('every stdout line is JSON (pino)', () => {
    const lines = sidecar
      .stdout()
      .split('\n')
      .filter((l) => l.trim() !== '');
    for (const l of lines) expect(() => JSON.parse(l), l).not.toThrow();
  });
});

describe('ops listener', () => {
  test('healthz, readyz, metrics are served; proxy routes are not served on ops', async () => {
    const sc = await startSidecar({ upstream: backend.url, store: keys.store });
    try {
      expect((await send(sc.opsPort, { path: '/healthz' })).status).toBe(200);
      expect((await send(sc.opsPort, { path: '/readyz' })).status).toBe(200);
      expect((await send(sc.opsPort, { path: '/metrics' })).status).toBe(200);
      backend.reset();
      const r = await send(sc.opsPort, { path: '/v1/devices', headers: keyHeader(keys.server) });
      expect(r.status).not.toBe(200);
      expect(backend.received).toHaveLength(0);
      // ops endpoints are not exposed on the proxy listener without auth
      const p = await send(sc.proxyPort, { path: '/metrics' });
      expect(p.status).toBe(401);
    } finally {
      await sc.stop();
    }
  });
});

describe('SIGTERM', () => {
  test('in-flight slow request completes, new connections refused, exit 0', async () => {
    const slow = await startBackend();
    slow.delayMs = 1500;
    const sc = await startSidecar({ upstream: slow.url, store: keys.store });
    try {
      const inflight = send(sc.proxyPort, { path: '/v1/devices', headers: keyHeader(keys.alice), timeoutMs: 20_000 });
      await sleep(300);
      expect(slow.received.length).toBe(1);
      const t0 = Date.now();
      sc.proc.kill('SIGTERM');
      await sleep(200);
      // new connection after SIGTERM: refused or answered with 503; never forwarded
      let late: string;
      try {
        const r = await send(sc.proxyPort, { path: '/v1/devices', headers: keyHeader(keys.bob), timeoutMs: 5000 });
        late = String(r.status);
      } catch (e) {
        late = (e as NodeJS.ErrnoException).code ?? String(e);
      }
      expect(['ECONNREFUSED', 'ECONNRESET', '503'], late).toContain(late);
      const r = await inflight;
      expect(r.status, r.text).toBe(200);
      expect((r.json as { data: unknown[] }).data).toHaveLength(2);
      const code = await sc.exited;
      console.log(`[observation] SIGTERM → exit ${code} after ${Date.now() - t0} ms`);
      expect(code).toBe(0);
      expect(slow.received.filter((x) => x.headers['x-keygate-reference-id'] === 'bob')).toHaveLength(0);
    } finally {
      await sc.stop();
      await slow.close();
    }
  });

  test('SIGTERM with an idle keep-alive client connection still exits 0 promptly', async () => {
    const sc = await startSidecar({ upstream: backend.url, store: keys.store });
    // open a raw keep-alive connection and leave it idle
    const idle = rawSend(sc.proxyPort, `GET /v1/devices HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${keys.alice.key}\r\n\r\n`, 8000);
    await sleep(300);
    const t0 = Date.now();
    sc.proc.kill('SIGTERM');
    const code = await sc.exited;
    const ms = Date.now() - t0;
    console.log(`[observation] SIGTERM with idle keep-alive → exit ${code} after ${ms} ms`);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(10_000);
    const r = await idle;
    expect(r.status).toBe(200);
  });
});
