// Headers that change what a backend acts on: rewrite headers (a path, a method) never
// reach it, and forwarding headers are Keygate's unless the hop is trusted (--trust-proxy).
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { type FrameworkBackend, startFramework } from './frameworks.ts';
import { createKeySet, type KeySet, keyHeader, type Received, type Sidecar, send, startSidecar } from './harness.ts';

let fw: FrameworkBackend;
let keys: KeySet;
let sidecar: Sidecar;
let trusting: Sidecar;

beforeAll(async () => {
  fw = await startFramework();
  keys = await createKeySet();
  sidecar = await startSidecar({ upstream: fw.url, store: keys.store });
  // The tests' client is on 127.0.0.1: to this sidecar it is the ingress.
  trusting = await startSidecar({ upstream: fw.url, store: keys.store, env: { KEYGATE_TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' } });
});
afterAll(async () => {
  await sidecar?.stop();
  await trusting?.stop();
  await fw?.close();
});
beforeEach(() => {
  fw.reset();
  fw.quirks = { rewriteHeaders: true };
});

function names(rec: Received): string[] {
  return rec.rawHeaders.filter((_, i) => i % 2 === 0).map((h) => h.toLowerCase());
}

describe('5. URL-rewrite headers never reach the backend (IIS URL Rewrite / Symfony: X-Original-URL replaces the path)', () => {
  const SPELLINGS = ['X-Original-URL', 'X-Rewrite-URL', 'x-original-url', 'X_Original_URL', 'X_REWRITE_URL'];

  test.each(SPELLINGS)("scoped key + %s: the workspace secret is not served in place of alice's history", async (header) => {
    const r = await send(sidecar.proxyPort, { path: '/v1/devices/dev-alice-1/history', headers: { ...keyHeader(keys.alice), [header]: '/v1/workspaces/current/secrets' } });
    expect(r.text).not.toContain('WORKSPACE_SECRET');
    expect(r.status, r.text).toBe(200);
    expect(r.text).toContain('ALICE_SECRET_1');
  });

  test.each(SPELLINGS)('scoped key + %s: a command is not turned into a batch command', async (header) => {
    const r = await send(sidecar.proxyPort, {
      method: 'POST',
      path: '/v1/commands/thermostat/set',
      body: '{"deviceId":"dev-alice-1"}',
      headers: { ...keyHeader(keys.alice), 'content-type': 'application/json', [header]: '/v1/batch-commands' },
    });
    expect(r.status, r.text).toBe(201);
    expect(fw.effects).toEqual([{ action: 'command', target: 'dev-alice-1' }]);
  });

  test.each(SPELLINGS)('connect key + %s: a Connect link request does not create an API key', async (header) => {
    const r = await send(sidecar.proxyPort, {
      method: 'POST',
      path: '/v1/connections',
      body: '{}',
      headers: { ...keyHeader(keys.connect), 'content-type': 'application/json', [header]: '/v1/api-keys' },
    });
    expect(r.text).not.toContain('MINTED_BY_ATTACK');
    // Keygate answers Connect link requests itself (here: the body lacks redirectUrl); the backend does nothing.
    expect(r.status, r.text).toBe(400);
    expect(fw.effects).toEqual([]);
  });

  test('every header that can carry a path, a method or a rewrite target is dropped, for every key (the server key too)', async () => {
    const rewrite = [
      'X-Original-URL',
      'X-Rewrite-URL',
      'X-Override-URL',
      'X-Original-URI',
      'X-Original-Method',
      'X-Original-Path',
      'X-HTTP-Method',
      'X-HTTP-Method-Override',
      'X-Method-Override',
      'X-Forwarded-Path',
      'X-Forwarded-Prefix',
      'X-Forwarded-Uri',
      'X-Forwarded-Url',
      'X-Envoy-Original-Path',
      'X-Middleware-Rewrite',
      'X-Invoke-Path',
      'X-Script-Name',
      'X_Original_URL',
      'X_Forwarded_Prefix',
      'X_HTTP_Method_Override',
    ];
    for (const key of [keys.alice, keys.server]) {
      fw.reset();
      const headers: Record<string, string> = { ...keyHeader(key) };
      for (const h of rewrite) headers[h] = '/v1/api-keys';
      const r = await send(sidecar.proxyPort, { path: '/v1/devices', headers });
      expect(r.status, r.text).toBe(200);
      const got = names(fw.requests()[0]!);
      for (const h of rewrite) expect(got, h).not.toContain(h.toLowerCase());
      expect(fw.requests()[0]!.rawHeaders.join('\n')).not.toContain('/v1/api-keys');
    }
  });
});

describe('10. forwarding headers are what Keygate saw, unless the hop is trusted', () => {
  const SPOOFED: Record<string, string> = {
    Forwarded: 'for=10.6.6.6;proto=https;host=evil.test',
    'X-Forwarded-For': '10.6.6.6',
    'X-Forwarded-Proto': 'https',
    'X-Forwarded-Host': 'evil.test',
    'X-Forwarded-Port': '443',
    'X-Forwarded-Server': 'evil.test',
    'X-Real-IP': '10.6.6.6',
    'True-Client-IP': '10.6.6.6',
    'X-Client-IP': '10.6.6.6',
    'CF-Connecting-IP': '10.6.6.6',
    'Fastly-Client-IP': '10.6.6.6',
    'X-Cluster-Client-IP': '10.6.6.6',
    X_Real_IP: '10.6.6.6',
    'X-Request-Id': 'client-chosen-id',
  };

  test("an untrusted client's forwarding headers are replaced (Express `trust proxy` would read 10.6.6.6 as the client)", async () => {
    const r = await send(sidecar.proxyPort, { path: '/v1/devices', headers: { ...keyHeader(keys.alice), ...SPOOFED } });
    expect(r.status, r.text).toBe(200);
    const got = fw.requests()[0]!;
    expect(got.rawHeaders.join('\n')).not.toMatch(/10\.6\.6\.6|evil\.test|client-chosen-id|https/);
    expect(got.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(got.headers['x-forwarded-proto']).toBe('http');
    expect(got.headers['x-forwarded-host']).toBe(`127.0.0.1:${sidecar.proxyPort}`);
    expect(got.headers.forwarded).toBe(`for="127.0.0.1";host="127.0.0.1:${sidecar.proxyPort}";proto=http`);
    for (const h of ['x-real-ip', 'true-client-ip', 'x-client-ip', 'cf-connecting-ip', 'fastly-client-ip', 'x-cluster-client-ip']) expect(got.headers[h], h).toBe('127.0.0.1');
    expect(got.headers['x-forwarded-port']).toBeUndefined();
    expect(got.headers['x-request-id']).toBe(r.headers['x-request-id']);
    // one of each
    const count = (h: string) => names(got).filter((n) => n === h).length;
    for (const h of ['x-forwarded-for', 'x-forwarded-proto', 'x-real-ip', 'forwarded', 'x-request-id']) expect(count(h), h).toBe(1);
  });

  test("from a trusted hop (KEYGATE_TRUST_PROXY) the ingress's X-Forwarded-Proto, X-Request-Id and client address pass", async () => {
    const r = await send(trusting.proxyPort, {
      path: '/v1/devices',
      headers: {
        ...keyHeader(keys.alice),
        'X-Forwarded-Proto': 'https',
        'X-Request-Id': 'ingress-7f3a',
        'X-Forwarded-For': '203.0.113.9',
        'X-Real-IP': '203.0.113.9',
        Forwarded: 'for=203.0.113.9;proto=https',
        'X-Forwarded-Host': 'api.example.com',
      },
    });
    expect(r.status, r.text).toBe(200);
    const got = fw.requests()[0]!;
    expect(got.headers['x-forwarded-proto']).toBe('https');
    expect(got.headers['x-request-id']).toBe('ingress-7f3a');
    expect(got.headers['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1');
    expect(got.headers['x-real-ip']).toBe('203.0.113.9');
    expect(got.headers['x-forwarded-host']).toBe('api.example.com');
    expect(got.headers.forwarded).toBe('for=203.0.113.9;proto=https, for="127.0.0.1"');
  });

  test('a trusted hop still cannot pass a rewrite header, the key or an identity header', async () => {
    const r = await send(trusting.proxyPort, {
      path: '/v1/devices/dev-alice-1/history',
      headers: { ...keyHeader(keys.alice), 'X-Original-URL': '/v1/workspaces/current/secrets', 'X-Forwarded-Prefix': '/admin', 'X-Keygate-Reference-Id': 'bob' },
    });
    expect(r.status, r.text).toBe(200);
    expect(r.text).not.toContain('WORKSPACE_SECRET');
    const got = fw.requests()[0]!;
    expect(got.headers['x-original-url']).toBeUndefined();
    expect(got.headers['x-forwarded-prefix']).toBeUndefined();
    expect(got.headers['x-keygate-reference-id']).toBe('alice');
  });
});

describe('10. proxy-trust headers of other conventions pass only from a trusted hop', () => {
  // What frameworks believe because the proxy in front of them sets it: the scheme, the host,
  // a verified client certificate, the user an auth proxy signed in.
  const CLAIMS: Record<string, string> = {
    'X-Scheme': 'https',
    'Front-End-Https': 'on',
    'X-Arr-Ssl': 'on',
    'X-Url-Scheme': 'https',
    'X-Host': 'evil.test',
    'X-Real-Port': '443',
    'X-Envoy-External-Address': '10.6.6.6',
    'X-ARR-ClientCert': 'MIIBFAKECERT',
    'X-SSL-Client-Cert': 'MIIBFAKECERT',
    'Ssl-Client-Cert': 'MIIBFAKECERT',
    'X-Client-Verify': 'SUCCESS',
    'X-SSL-Client-S-DN': 'CN=admin',
    'Remote-User': 'admin',
    'X-Remote-User': 'admin',
    X_Remote_User: 'admin',
    'X-Auth-Request-User': 'admin',
    'X-Auth-Request-Email': 'admin@example.com',
    'X-WEBAUTH-USER': 'admin',
    'X-Authenticated-User': 'admin',
    'X-Authenticated-Userid': 'admin',
    'X-User-Id': 'admin',
    'X-Consumer-Username': 'admin',
    'X-MS-CLIENT-PRINCIPAL-NAME': 'admin',
    'X-Amzn-Oidc-Identity': 'admin',
    'X-Goog-Authenticated-User-Email': 'admin@example.com',
  };
  const PLAIN: Record<string, string> = { 'User-Agent': 'ua-1', 'Accept-Language': 'de', 'Sec-Fetch-User': '?1', 'X-Api-Version': '2', 'X-Correlation-Token': 'c-1', 'X-Auth-Token': 'app-session-1' };

  test('from an untrusted client none of them reaches the backend; plain end-to-end headers do', async () => {
    const r = await send(sidecar.proxyPort, { path: '/v1/devices/dev-alice-1/history', headers: { ...keyHeader(keys.alice), ...CLAIMS, ...PLAIN } });
    expect(r.status, r.text).toBe(200);
    const got = fw.requests()[0]!;
    const seen = names(got);
    for (const h of Object.keys(CLAIMS)) expect(seen, h).not.toContain(h.toLowerCase());
    for (const h of Object.keys(CLAIMS)) expect(seen, h).not.toContain(h.toLowerCase().replaceAll('_', '-'));
    expect(got.rawHeaders.join('\n')).not.toMatch(/admin|FAKECERT|SUCCESS|evil\.test|10\.6\.6\.6/);
    for (const [h, v] of Object.entries(PLAIN)) expect(got.headers[h.toLowerCase()], h).toBe(v);
  });

  test('the server key cannot send them either from an untrusted client', async () => {
    const r = await send(sidecar.proxyPort, { path: '/v1/devices', headers: { ...keyHeader(keys.server), 'Remote-User': 'admin', 'X-ARR-ClientCert': 'MIIBFAKECERT' } });
    expect(r.status, r.text).toBe(200);
    expect(fw.requests()[0]!.rawHeaders.join('\n')).not.toMatch(/admin|FAKECERT/);
  });

  test('from a trusted hop (the ingress that sets them) they pass', async () => {
    const r = await send(trusting.proxyPort, {
      path: '/v1/devices/dev-alice-1/history',
      headers: { ...keyHeader(keys.alice), 'X-ARR-ClientCert': 'MIIBREALCERT', 'X-Auth-Request-User': 'alice@example.com', 'X-Scheme': 'https' },
    });
    expect(r.status, r.text).toBe(200);
    const got = fw.requests()[0]!;
    expect(got.headers['x-arr-clientcert']).toBe('MIIBREALCERT');
    expect(got.headers['x-auth-request-user']).toBe('alice@example.com');
    expect(got.headers['x-scheme']).toBe('https');
  });
});

describe('compression: a checked answer is asked for as it is', () => {
  const BROWSER = { 'Accept-Encoding': 'gzip, deflate, br, zstd' };

  test("Express compression(): a browser's scoped list and device read are answered (the backend is asked for identity)", async () => {
    fw.quirks = { compress: true };
    for (const path of ['/v1/devices', '/v1/devices/dev-alice-1']) {
      fw.reset();
      const r = await send(sidecar.proxyPort, { path, headers: { ...keyHeader(keys.alice), ...BROWSER } });
      expect(r.status, `${path} ${r.text}`).toBe(200);
      expect(r.text).toContain('dev-alice-1');
      expect(r.text).not.toContain('dev-bob-1');
      const got = fw.requests()[0]!;
      expect(got.headers['accept-encoding'], path).toBe('identity');
      expect(names(got).filter((n) => n === 'accept-encoding')).toHaveLength(1);
    }
  });

  test("an answer Keygate streams unchecked keeps the client's Accept-Encoding and comes compressed", async () => {
    fw.quirks = { compress: true };
    const r = await send(sidecar.proxyPort, { path: '/v1/devices', headers: { ...keyHeader(keys.server), ...BROWSER } });
    expect(r.status).toBe(200);
    expect(fw.requests()[0]!.headers['accept-encoding']).toBe(BROWSER['Accept-Encoding']);
    expect(r.headers['content-encoding']).toBe('gzip');
  });
});
