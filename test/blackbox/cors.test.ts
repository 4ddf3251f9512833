/**
 * Browsers, through the external contract: preflights answered without a key and never
 * forwarded, CORS headers only for the origins a key allows (echoed exactly), refusals
 * readable by allowed origins, and secret keys refused from browsers (KEY_EXPOSED).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createKeyWith, finishLink, newLink, scopedKeyOf } from './connect-client.ts';
import { type Backend, errorBody, type KeyInfo, keyHeader, type Sidecar, send, sleep, startBackend, startSidecar, tempStore } from './harness.ts';

const APP = 'https://app.example.com';
const OTHER = 'https://other.example.com';

let backend: Backend;
let sidecar: Sidecar;
let store: string;
let server: KeyInfo;
let connectKey: KeyInfo;
let scoped: string;
let port: number;

beforeAll(async () => {
  backend = await startBackend();
  store = tempStore();
  server = await createKeyWith(store, 'server');
  connectKey = await createKeyWith(store, 'connect', ['--allow-origin', APP, '--allow-origin', 'http://localhost:5173', '--allow-redirect', `${APP}/connected`, '--allow-reference-id']);
  await createKeyWith(store, 'connect', ['--allow-origin', OTHER, '--allow-redirect', `${OTHER}/cb`]);
  sidecar = await startSidecar({ upstream: backend.url, store });
  port = sidecar.proxyPort;
  scoped = scopedKeyOf(await finishLink(port, await newLink(port, connectKey.key, { redirectUrl: `${APP}/connected`, referenceId: 'alice' })));
}, 60_000);
afterAll(async () => {
  await sidecar?.stop();
  await backend?.close();
});
beforeEach(() => backend.reset());

function preflight(origin: string, method = 'GET', headers = 'texture-api-key') {
  return send(port, { method: 'OPTIONS', path: '/v1/devices', headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': headers } });
}

function corsHeaders(h: Record<string, unknown>): string[] {
  return Object.keys(h).filter((k) => k.startsWith('access-control-allow-'));
}

describe('preflights', () => {
  it('from an allowed origin: 204 with the origin echoed exactly, Vary, the key and content-type headers; never forwarded', async () => {
    const r = await preflight(APP, 'POST', 'texture-api-key, content-type');
    expect(r.status).toBe(204);
    expect(r.headers['access-control-allow-origin']).toBe(APP);
    expect(r.headers.vary).toMatch(/\bOrigin\b/);
    expect(String(r.headers['access-control-allow-headers'])).toMatch(/Texture-Api-Key/);
    expect(String(r.headers['access-control-allow-headers'])).toMatch(/Content-Type/);
    expect(String(r.headers['access-control-allow-methods'])).toMatch(/POST/);
    expect(r.headers['access-control-allow-credentials']).toBeUndefined();
    expect(backend.received).toEqual([]);
  });

  it.each(['https://evil.example', `${APP}.evil.test`, 'https://app.example.co', `${APP}:8443`, 'http://app.example.com', 'null', 'https://APP.example.com'])(
    'from %s: no Access-Control-Allow-* header, never forwarded',
    async (origin) => {
      const r = await preflight(origin);
      expect(corsHeaders(r.headers)).toEqual([]);
      expect(r.headers['access-control-allow-origin']).toBeUndefined();
      expect(backend.received).toEqual([]);
    },
  );
});

describe('keyed requests with an Origin', () => {
  it("a scoped key from its connect key's origin gets the answer with CORS headers (and X-Request-Id exposed)", async () => {
    const r = await send(port, { path: '/v1/devices', headers: { ...keyHeader(scoped), origin: APP } });
    expect(r.status).toBe(200);
    expect(r.headers['access-control-allow-origin']).toBe(APP);
    expect(r.headers.vary).toMatch(/\bOrigin\b/);
    expect(String(r.headers['access-control-expose-headers'])).toMatch(/X-Request-Id/);
    expect(backend.received[0]!.url).toBe('/v1/devices?referenceId=alice');
    expect(backend.received[0]!.headers.origin).toBe(APP);
  });

  it("the backend's own Access-Control-* headers never reach the browser", async () => {
    backend.responder = () => ({
      status: 200,
      headers: { 'content-type': 'application/json', 'access-control-allow-origin': '*', 'access-control-allow-credentials': 'true' },
      body: '{"data":[],"page":1,"perPage":50,"totalItems":0,"totalPages":1}',
    });
    const r = await send(port, { path: '/v1/devices', headers: { ...keyHeader(scoped), origin: APP } });
    expect(r.headers['access-control-allow-origin']).toBe(APP);
    expect(r.headers['access-control-allow-credentials']).toBeUndefined();
  });

  it('a key used from an origin it does not allow → 403 ORIGIN_NOT_ALLOWED, nothing forwarded', async () => {
    for (const origin of [OTHER, 'https://evil.example', `${APP}.evil.test`]) {
      const r = await send(port, { path: '/v1/devices', headers: { ...keyHeader(scoped), origin } });
      expect(r.status, origin).toBe(403);
      expect(errorBody(r).error.code).toBe('ORIGIN_NOT_ALLOWED');
    }
    expect(backend.received).toEqual([]);
  });

  it('refusals carry CORS headers for an allowed origin, so the app can read why; not for others', async () => {
    const noKey = await send(port, { path: '/v1/devices', headers: { origin: APP } });
    expect(noKey.status).toBe(401);
    expect(noKey.headers['access-control-allow-origin']).toBe(APP);
    const forbidden = await send(port, { path: '/v1/devices/dev-bob-1', headers: { ...keyHeader(scoped), origin: APP } });
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers['access-control-allow-origin']).toBe(APP);
    const stranger = await send(port, { path: '/v1/devices', headers: { origin: 'https://evil.example' } });
    expect(stranger.status).toBe(401);
    expect(stranger.headers['access-control-allow-origin']).toBeUndefined();
  });

  it("a key's refusal is not readable by an origin only another app's connect key allows", async () => {
    // OTHER is allowed by the second connect key, not by the scoped key's.
    const scopedRefused = await send(port, { path: '/v1/devices', headers: { ...keyHeader(scoped), origin: OTHER } });
    expect(scopedRefused.status).toBe(403);
    expect(errorBody(scopedRefused).error.code).toBe('ORIGIN_NOT_ALLOWED');
    expect(corsHeaders(scopedRefused.headers)).toEqual([]);
    expect(scopedRefused.headers['access-control-expose-headers']).toBeUndefined();
    const secret = await send(port, { path: '/v1/devices', headers: { ...keyHeader(server), origin: APP } });
    expect(secret.status).toBe(403);
    expect(errorBody(secret).error.code).toBe('KEY_EXPOSED');
    expect(corsHeaders(secret.headers)).toEqual([]);
    // Without a usable key the origin of any connect key may read why.
    const unknownKey = await send(port, { path: '/v1/devices', headers: { 'texture-api-key': 'scoped_unknown0000000000000000000000', origin: OTHER } });
    expect(unknownKey.status).toBe(401);
    expect(unknownKey.headers['access-control-allow-origin']).toBe(OTHER);
    expect(backend.received).toEqual([]);
  });

  it("a connect key creates links from its origin (the SDK's call), with CORS headers", async () => {
    const r = await send(port, {
      method: 'POST',
      path: '/v1/connections',
      headers: { ...keyHeader(connectKey), origin: 'http://localhost:5173', 'content-type': 'application/json' },
      body: JSON.stringify({ redirectUrl: `${APP}/connected` }),
    });
    expect(r.status).toBe(201);
    expect(r.headers['access-control-allow-origin']).toBe('http://localhost:5173');
  });

  it('a request without an Origin carries no CORS headers', async () => {
    const r = await send(port, { path: '/v1/devices', headers: keyHeader(scoped) });
    expect(r.status).toBe(200);
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('secret keys in browsers', () => {
  it.each([[{ origin: APP }], [{ 'sec-fetch-site': 'cross-site' }], [{ 'sec-fetch-site': 'same-origin' }]])(
    'a server key sent with %j → 403 KEY_EXPOSED, nothing forwarded, a warning naming the key id, a metric',
    async (browserHeaders) => {
      const r = await send(port, { path: '/v1/devices', headers: { ...keyHeader(server), ...browserHeaders } });
      expect(r.status).toBe(403);
      expect(errorBody(r).error.code).toBe('KEY_EXPOSED');
      expect(backend.received).toEqual([]);
      await sleep(100);
      const warning = sidecar.logs().find((l) => l.level === 40 && l.keyId === server.id);
      expect(warning?.msg).toMatch(/secret key was used from a browser/);
      expect(sidecar.stdout()).not.toContain(server.key);
      const metrics = await send(sidecar.opsPort, { path: '/metrics' });
      expect(metrics.text).toMatch(/keygate_keys_exposed_total\{type="server"\} [1-9]/);
    },
  );

  it('the same server key without browser headers still works', async () => {
    expect((await send(port, { path: '/v1/devices', headers: keyHeader(server) })).status).toBe(200);
  });

  it('with --revoke-exposed-keys the key is revoked at once', async () => {
    const exposedStore = tempStore();
    const key = await createKeyWith(exposedStore, 'server');
    const revoking = await startSidecar({ upstream: backend.url, store: exposedStore, env: { KEYGATE_REVOKE_EXPOSED_KEYS: 'true' } });
    try {
      expect((await send(revoking.proxyPort, { path: '/v1/devices', headers: keyHeader(key) })).status).toBe(200);
      expect((await send(revoking.proxyPort, { path: '/v1/devices', headers: { ...keyHeader(key), origin: APP } })).status).toBe(403);
      await sleep(200);
      const after = await send(revoking.proxyPort, { path: '/v1/devices', headers: keyHeader(key) });
      expect(after.status).toBe(401);
      expect(errorBody(after).error.code).toBe('KEY_INVALID');
    } finally {
      await revoking.stop();
    }
  });
});
