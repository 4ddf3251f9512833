/**
 * Rate limits through the external contract: over a limit → 429 RATE_LIMITED with
 * Retry-After and the RateLimit-Policy / RateLimit fields, and the backend receives
 * nothing; under it the answer carries the fields; the most specific limit wins (key over
 * key type); a public key's link creation is counted per client address.
 */
import { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createKeyWith, createLink } from './connect-client.ts';
import { type Backend, createKey, errorBody, type KeyInfo, keyHeader, type Sidecar, send, startBackend, startSidecar, tempStore } from './harness.ts';
import { policyWithLimits } from './rate-limit-policy.ts';

const APP = 'https://app.example.com';

let backend: Backend;
let sidecar: Sidecar;
let server: KeyInfo;
let limitedServer: KeyInfo;
let alice: KeyInfo;
let bob: KeyInfo;
let carol: KeyInfo;
let connectKey: KeyInfo;
let port: number;

beforeAll(async () => {
  backend = await startBackend();
  const store = tempStore();
  server = await createKey(store, 'server');
  limitedServer = await createKey(store, 'server');
  alice = await createKey(store, 'scoped', 'alice');
  bob = await createKey(store, 'scoped', 'bob');
  carol = await createKey(store, 'scoped', 'carol');
  connectKey = await createKeyWith(store, 'connect', ['--allow-origin', APP, '--allow-redirect', `${APP}/connected`]);
  const policies = policyWithLimits({
    keyTypes: { scoped: { limit: 3, window: '1m' }, connect: { limit: 100, window: '1m' } },
    keys: { [bob.id]: { limit: 5, window: '1m' }, [limitedServer.id]: { limit: 100, window: '1m' } },
    actions: { 'connections:create': { limit: 2, window: '1m', per: 'client', keyTypes: ['connect'] } },
  });
  // The test's own address is the trusted hop, so X-Forwarded-For stands for distinct clients.
  sidecar = await startSidecar({ upstream: backend.url, store, policies, env: { KEYGATE_TRUST_PROXY: '127.0.0.1' } });
  port = sidecar.proxyPort;
}, 60_000);
afterAll(async () => {
  await sidecar?.stop();
  await backend?.close();
});
beforeEach(() => backend.reset());

const list = (k: KeyInfo) => send(port, { path: '/v1/devices', headers: keyHeader(k) });
const forwardedLists = () => backend.received.filter((r) => r.url.startsWith('/v1/devices?') || r.url === '/v1/devices').length;

describe('a scoped key over its key type’s limit (3 a minute)', () => {
  it('is answered 200 with RateLimit fields three times, then 429 RATE_LIMITED with Retry-After; the backend receives the three only', async () => {
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await list(alice);
      expect(r.status, r.text).toBe(200);
      expect(r.headers['ratelimit-policy']).toBe('"keyTypes.scoped";q=3;w=60');
      remaining.push(String(r.headers.ratelimit));
    }
    expect(remaining.map((v) => /;r=(\d+);t=(\d+)$/.exec(v)?.[1])).toEqual(['2', '1', '0']);
    expect(remaining.every((v) => v.startsWith('"keyTypes.scoped";'))).toBe(true);
    expect(forwardedLists()).toBe(3);

    const refused = await list(alice);
    expect(refused.status).toBe(429);
    expect(errorBody(refused).error.code).toBe('RATE_LIMITED');
    const retry = Number(refused.headers['retry-after']);
    // One request comes back every 20 s (3 a minute).
    expect(retry).toBeGreaterThanOrEqual(19);
    expect(retry).toBeLessThanOrEqual(20);
    expect(refused.headers['ratelimit-policy']).toBe('"keyTypes.scoped";q=3;w=60');
    expect(refused.headers.ratelimit).toMatch(/^"keyTypes\.scoped";r=0;t=(19|20)$/);
    expect(forwardedLists()).toBe(3);
  });

  it('a refused request is not counted: still refused, and still nothing forwarded', async () => {
    for (let i = 0; i < 5; i++) expect((await list(alice)).status).toBe(429);
    expect(backend.received).toEqual([]);
  });

  it('the access line says RATE_LIMITED with the limit that refused', () => {
    const line = sidecar.logs().find((l) => l.msg === 'access' && l.code === 'RATE_LIMITED');
    expect(line).toMatchObject({ status: 429, decision: 'limited', keyId: alice.id, keyType: 'scoped', route: 'GET /v1/devices' });
    expect(String(line?.detail)).toContain('keyTypes.scoped');
  });
});

describe('the most specific limit wins', () => {
  it('a key with keys.<id> (5) gets its own limit over its key type’s (3)', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await list(bob);
      expect(r.status, r.text).toBe(200);
      expect(r.headers['ratelimit-policy']).toBe(`"keys.${bob.id}";q=5;w=60`);
    }
    expect((await list(bob)).status).toBe(429);
    expect(forwardedLists()).toBe(5);
  });

  it('a key type with no limit (server) gets no RateLimit fields and is never refused', async () => {
    for (let i = 0; i < 8; i++) {
      const r = await list(server);
      expect(r.status).toBe(200);
      expect(r.headers['ratelimit-policy']).toBeUndefined();
      expect(r.headers.ratelimit).toBeUndefined();
    }
  });
});

describe('the fields are Keygate’s alone', () => {
  it('a backend’s own RateLimit fields are replaced by Keygate’s on a forwarded answer', async () => {
    backend.responder = (rec) =>
      rec.url === '/v1/sites'
        ? { status: 200, headers: { 'content-type': 'application/json', ratelimit: '"backend";r=1;t=1', 'ratelimit-policy': '"backend";q=5;w=1' }, body: '{"data":[]}' }
        : undefined;
    try {
      const r = await send(port, { path: '/v1/sites', headers: keyHeader(limitedServer) });
      expect(r.status).toBe(200);
      expect(r.headers['ratelimit-policy']).toBe(`"keys.${limitedServer.id}";q=100;w=60`);
      // Node joins repeated fields with ", ": one value means the backend's is gone.
      expect(r.headers.ratelimit).toBe(`"keys.${limitedServer.id}";r=99;t=1`);
    } finally {
      backend.responder = undefined;
    }
  });
});

describe('a refusal after the request was counted carries the fields too', () => {
  it('a scoped key asking for another user’s device: 403 with RateLimit-Policy and RateLimit, one request of its budget used', async () => {
    const r = await send(port, { path: '/v1/devices/dev-alice-1', headers: keyHeader(carol) });
    expect(r.status, r.text).toBe(403);
    expect(errorBody(r).error.code).toBe('RESOURCE_NOT_ALLOWED');
    expect(r.headers['ratelimit-policy']).toBe('"keyTypes.scoped";q=3;w=60');
    expect(r.headers.ratelimit).toMatch(/^"keyTypes\.scoped";r=2;t=\d+$/);
  });

  it('a backend answer Keygate cannot check: 502 with the fields, the next request counted after it', async () => {
    backend.responder = (rec) => (rec.url.startsWith('/v1/devices?') ? { status: 200, headers: { 'content-type': 'application/json' }, body: '{"data":[' } : undefined);
    try {
      const r = await list(carol);
      expect(r.status, r.text).toBe(502);
      expect(r.headers['ratelimit-policy']).toBe('"keyTypes.scoped";q=3;w=60');
      expect(r.headers.ratelimit).toMatch(/^"keyTypes\.scoped";r=1;t=\d+$/);
    } finally {
      backend.responder = undefined;
    }
    const next = await list(carol);
    expect(next.status).toBe(200);
    expect(next.headers.ratelimit).toMatch(/^"keyTypes\.scoped";r=0;t=\d+$/);
  });
});

describe('link creation by the public connect key, per client address', () => {
  const link = (client: string, origin?: string) => createLink(port, connectKey.key, { redirectUrl: `${APP}/connected` }, { 'x-forwarded-for': client, ...(origin === undefined ? {} : { origin }) });

  it('one client is refused after its 2 links; another client of the same key still creates its own', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await link('203.0.113.7');
      expect(r.status, r.text).toBe(201);
      expect(r.headers['ratelimit-policy']).toBe('"keyTypes.connect";q=100;w=60, "actions.connections:create";q=2;w=60');
    }
    const refused = await link('203.0.113.7');
    expect(refused.status).toBe(429);
    expect(errorBody(refused).error.code).toBe('RATE_LIMITED');
    expect(refused.headers['ratelimit-policy']).toBe('"actions.connections:create";q=2;w=60');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(29);

    expect((await link('198.51.100.2')).status).toBe(201);
    // An IPv6 client is counted by its /64: another address of the same block shares its budget.
    expect((await link('2001:db8:1:2::1')).status).toBe(201);
    expect((await link('2001:db8:1:2:ffff::9')).status).toBe(201);
    expect((await link('2001:db8:1:2::abcd')).status).toBe(429);
  });

  it('a browser on an allowed origin can read the 429 and its fields (CORS exposes them)', async () => {
    const r = await link('203.0.113.7', APP);
    expect(r.status).toBe(429);
    expect(r.headers['access-control-allow-origin']).toBe(APP);
    const exposed = String(r.headers['access-control-expose-headers']).split(/\s*,\s*/);
    expect(exposed).toEqual(expect.arrayContaining(['Retry-After', 'RateLimit', 'RateLimit-Policy']));
  });
});

describe('regression: a link flood by the public connect key, under the shipped policy', () => {
  let shipped: Sidecar;
  let store: string;
  let floodKey: KeyInfo;
  beforeAll(async () => {
    store = tempStore();
    floodKey = await createKeyWith(store, 'connect', ['--allow-redirect', `${APP}/connected`]);
    shipped = await startSidecar({ upstream: backend.url, store });
  }, 60_000);
  afterAll(async () => {
    await shipped?.stop();
  });

  it('one address gets 20 links a minute, then 429 RATE_LIMITED, and the store keeps no row for a refused one', async () => {
    const linkRows = () => {
      const db = new DatabaseSync(store.slice('sqlite:'.length), { readOnly: true });
      try {
        return Number((db.prepare('SELECT COUNT(*) AS n FROM connect_links').get() as { n: number }).n);
      } finally {
        db.close();
      }
    };
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await createLink(shipped.proxyPort, floodKey.key, { redirectUrl: `${APP}/connected` })).status);
    expect(statuses).toEqual([...Array<number>(20).fill(201), ...Array<number>(10).fill(429)]);
    expect(linkRows()).toBe(20);
    expect(backend.received).toEqual([]);
  });
});
