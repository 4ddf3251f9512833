// Path canonicalisation. The path the policy judged is the path the backend receives.
import { describe, expect, test } from 'vitest';
import { errorBody, keyHeader, rawSend, send, useStack, writes } from './harness.ts';

const stack = useStack();

// Each of these must be 400 for every key type, and the backend must receive nothing.
const REJECT_400: Array<[string, string]> = [
  ['%2F in segment', '/v1/devices/dev-alice-1%2F..%2F..%2Fsites'],
  ['%2F encoded slash to reach foreign', '/v1/devices/dev-alice-1%2F..%2Fdev-bob-1'],
  ['%2f lowercase', '/v1/devices/dev-alice-1%2fhistory'],
  ['%5C', '/v1/devices/dev-alice-1%5C..%5Cdev-bob-1'],
  ['%5c lowercase', '/v1/devices/dev-alice-1%5chistory'],
  ['%00', '/v1/devices/dev-alice-1%00'],
  ['%00 mid', '/v1/devices/dev%00-alice-1/history'],
  ['literal backslash', '/v1/devices/dev-alice-1\\..\\dev-bob-1'],
  ['// double slash', '/v1//devices'],
  ['// leading', '//v1/devices'],
  ['// trailing segment', '/v1/devices//dev-alice-1'],
  ['matrix ;', '/v1/devices;x=1'],
  ['matrix ; on id', '/v1/devices/dev-alice-1;jsessionid=1'],
  ['matrix ; encoded %3B', '/v1/devices/dev-alice-1%3Bx=1'],
  ['%2e%2e', '/v1/devices/dev-alice-1/%2e%2e/dev-bob-1'],
  ['%2E%2E upper', '/v1/devices/dev-alice-1/%2E%2E/dev-bob-1'],
  ['.%2e mix', '/v1/devices/dev-alice-1/.%2e/dev-bob-1'],
  ['invalid percent', '/v1/devices/%zz'],
  ['truncated percent', '/v1/devices/dev-alice-1%2'],
  ['overlong utf-8 slash %C0%AF', '/v1/devices/dev-alice-1%C0%AF..%C0%AFdev-bob-1'],
];

// Dot segments: Keygate may resolve (then judge the resolved path) or reject with 400.
const DOTS: Array<[string, string, string]> = [
  ['/./', '/v1/./devices/dev-bob-1', '/v1/devices/dev-bob-1'],
  ['/../ to foreign', '/v1/devices/dev-alice-1/../dev-bob-1', '/v1/devices/dev-bob-1'],
  ['/../ to sites', '/v1/devices/dev-alice-1/../../sites', '/v1/sites'],
  ['trailing /..', '/v1/devices/dev-alice-1/history/..', '/v1/devices/dev-alice-1'],
  ['trailing /.', '/v1/devices/dev-alice-1/.', '/v1/devices/dev-alice-1'],
  ['.. above root', '/../../v1/sites', '/v1/sites'],
];

describe('encoded separators, NUL, //, matrix → 400 and nothing forwarded', () => {
  for (const who of ['alice', 'server'] as const) {
    test.each(REJECT_400)(`${who}: %s`, async (_n, path) => {
      const r = await send(stack.sidecar.proxyPort, { path, headers: keyHeader(stack.keys[who]) });
      expect(r.status, `${path} → ${r.status} ${r.text}; backend got ${JSON.stringify(stack.backend.received.map((x) => x.url))}`).toBe(400);
      errorBody(r);
      expect(stack.backend.received.map((x) => x.url)).toEqual([]);
    });
  }
});

describe('double encoding is decoded exactly once (literal % in an id), never a bypass', () => {
  test.each([['/v1/devices/dev-alice-1%252F..%252Fdev-bob-1'], ['/v1/devices/dev-alice-1/%252e%252e/dev-bob-1'], ['/v1/devices/dev-bob-1%2500']])(
    'alice %s → refused, bob never reached',
    async (path) => {
      const r = await send(stack.sidecar.proxyPort, { path, headers: keyHeader(stack.keys.alice) });
      expect([400, 403, 404], r.text).toContain(r.status);
      expect(r.text).not.toMatch(/BOB/);
      // whatever reached the backend must still carry the %25 (no double decoding)
      for (const x of stack.backend.received) expect(x.url).toContain('%25');
    },
  );
  test('server: %252F is forwarded still encoded once more (backend sees literal %2F in the id), or 400', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices/dev-alice-1%252F..%252Fdev-bob-1', headers: keyHeader(stack.keys.server) });
    if (r.status === 400) expect(stack.backend.received).toHaveLength(0);
    else expect(stack.backend.received.map((x) => x.url)).toEqual(['/v1/devices/dev-alice-1%252F..%252Fdev-bob-1']);
  });
});

describe('dot segments: resolved-and-judged or 400', () => {
  test.each(DOTS)('alice: %s', async (_n, path, _resolved) => {
    const r = await send(stack.sidecar.proxyPort, { path, headers: keyHeader(stack.keys.alice) });
    // alice may never reach bob's device or sites, whatever the resolution
    expect([400, 403], `${path} → ${r.status} ${r.text}`).toContain(r.status);
    expect(r.text).not.toMatch(/BOB|site-1|HQ/);
    expect(stack.backend.received.filter((x) => !/^\/v1\/devices\/[^/]+$/.test(x.url)).map((x) => x.url)).toEqual([]);
    expect(stack.backend.received.some((x) => x.url.includes('.'))).toBe(false);
  });

  test.each(DOTS)('server: %s is rejected or forwarded in canonical form', async (_n, path, resolved) => {
    const r = await send(stack.sidecar.proxyPort, { path, headers: keyHeader(stack.keys.server) });
    if (r.status === 400) {
      expect(stack.backend.received).toHaveLength(0);
    } else {
      expect(stack.backend.received.map((x) => x.url)).toEqual([resolved]);
    }
  });
});

describe('trailing slash', () => {
  test('alice: /v1/devices/dev-bob-1/ is not a way around ownership', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices/dev-bob-1/', headers: keyHeader(stack.keys.alice) });
    expect([400, 403, 404]).toContain(r.status);
    expect(r.text).not.toMatch(/BOB/);
  });
  test('alice: /v1/sites/ → refused, nothing forwarded', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/sites/', headers: keyHeader(stack.keys.alice) });
    expect([400, 403]).toContain(r.status);
    expect(stack.backend.received).toHaveLength(0);
  });
  test('alice: /v1/devices/ (list with trailing slash) → 400/403, or forwarded only with the filter', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices/', headers: keyHeader(stack.keys.alice) });
    if (r.status < 300) {
      for (const x of stack.backend.received) expect(new URL(x.url, 'http://x').searchParams.getAll('referenceId')).toEqual(['alice']);
    } else expect([400, 403, 404]).toContain(r.status);
    expect(r.text).not.toMatch(/BOB/);
  });
  test('connect: POST /v1/connections/ → refused or forwarded canonical; never anything else', async () => {
    const r = await send(stack.sidecar.proxyPort, { method: 'POST', path: '/v1/connections/', body: '{}', headers: { ...keyHeader(stack.keys.connect), 'content-type': 'application/json' } });
    if (r.status < 300) expect(stack.backend.received.map((x) => x.url)).toEqual(['/v1/connections']);
    else expect(stack.backend.received).toHaveLength(0);
  });
});

describe('case variants: matched case-sensitively', () => {
  test.each(['/V1/Devices', '/v1/Devices', '/V1/devices', '/v1/DEVICES/dev-alice-1', '/v1/devices/dev-alice-1/HISTORY'])('alice %s → 400/403, nothing forwarded', async (path) => {
    const r = await send(stack.sidecar.proxyPort, { path, headers: keyHeader(stack.keys.alice) });
    expect([400, 403], `${path} → ${r.status} ${r.text}`).toContain(r.status);
    errorBody(r);
    expect(stack.backend.received.filter((x) => !/^\/v1\/devices\/[^/]+$/.test(x.url))).toHaveLength(0);
  });
  test('connect POST /V1/Connections → 400/403', async () => {
    const r = await send(stack.sidecar.proxyPort, { method: 'POST', path: '/V1/Connections', body: '{}', headers: { ...keyHeader(stack.keys.connect), 'content-type': 'application/json' } });
    expect([400, 403]).toContain(r.status);
    expect(stack.backend.received).toHaveLength(0);
  });
});

describe('absolute-form and odd request targets (raw sockets)', () => {
  const raw = (target: string, key: string, extra = '') =>
    rawSend(stack.sidecar.proxyPort, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nTexture-Api-Key: ${key}\r\n${extra}Connection: close\r\n\r\n`);

  test('absolute-form http://evil/v1/devices → 400, nothing forwarded', async () => {
    const r = await raw('http://evil/v1/devices', stack.keys.server.key);
    expect(r.status, r.raw).toBe(400);
    expect(stack.backend.received).toHaveLength(0);
  });
  test('absolute-form with scoped key to foreign device → 400', async () => {
    const r = await raw('http://127.0.0.1/v1/devices/dev-bob-1', stack.keys.alice.key);
    expect(r.status, r.raw).toBe(400);
    expect(r.raw).not.toMatch(/BOB/);
    expect(stack.backend.received).toHaveLength(0);
  });
  test('https absolute-form → 400', async () => {
    const r = await raw('https://evil.example:443/v1/sites', stack.keys.server.key);
    expect(r.status, r.raw).toBe(400);
    expect(stack.backend.received).toHaveLength(0);
  });
  test('asterisk-form / authority-form with GET → 400, nothing forwarded', async () => {
    for (const t of ['*', 'evil.example:80', 'v1/devices']) {
      stack.backend.reset();
      const r = await raw(t, stack.keys.server.key);
      expect([400, 404, 405], `${t}: ${r.raw}`).toContain(r.status);
      expect(stack.backend.received, t).toHaveLength(0);
    }
  });
  test('CONNECT method → refused or connection closed, never tunnelled, nothing forwarded', async () => {
    const r = await rawSend(stack.sidecar.proxyPort, `CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\nTexture-Api-Key: ${stack.keys.server.key}\r\n\r\n`);
    // 0 = socket closed without a response (node's default for an unhandled CONNECT)
    expect(r.status === 0 || r.status >= 400, r.raw).toBe(true);
    expect(stack.backend.received).toHaveLength(0);
  });
  test('fragment / raw space / tab in target are not forwarded as-is', async () => {
    for (const t of ['/v1/devices/dev-bob-1#x', '/v1/devices/dev-alice-1\t/../dev-bob-1']) {
      stack.backend.reset();
      const r = await raw(t, stack.keys.alice.key);
      expect(r.status, `${JSON.stringify(t)}: ${r.raw}`).not.toBe(200);
      expect(r.raw).not.toMatch(/BOB/);
    }
  });
});

describe('percent-encoded ordinary characters', () => {
  test('alice /v1/devices/%64ev-alice-1 is judged decoded and forwarded canonical', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices/%64ev-alice-1', headers: keyHeader(stack.keys.alice) });
    expect(r.status, r.text).toBe(200);
    expect(stack.backend.received.length).toBeGreaterThan(0);
    for (const x of stack.backend.received) expect(x.url).toBe('/v1/devices/dev-alice-1');
  });
  test('alice /v1/devices/%64ev-bob-1 (encoded foreign) → 403', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices/%64ev-bob-1', headers: keyHeader(stack.keys.alice) });
    expect(r.status, r.text).toBe(403);
    expect(r.text).not.toMatch(/BOB/);
  });
  test('alice /v1/%64evices (encoded route name) → judged as /v1/devices: filtered list', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/%64evices', headers: keyHeader(stack.keys.alice) });
    if (r.status === 200) {
      expect(stack.backend.received.map((x) => x.url)).toEqual(['/v1/devices?referenceId=alice']);
      expect(r.text).not.toMatch(/BOB/);
    } else {
      expect([400, 403]).toContain(r.status);
      expect(stack.backend.received).toHaveLength(0);
    }
  });
  test('alice /v1/%73ites (encoded sites) → 403, nothing forwarded', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/%73ites', headers: keyHeader(stack.keys.alice) });
    expect([400, 403]).toContain(r.status);
    expect(stack.backend.received).toHaveLength(0);
  });
  test('server /v1/devices/%64ev-bob-1/%68istory → backend receives canonical path', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices/%64ev-bob-1/%68istory', headers: keyHeader(stack.keys.server) });
    expect(r.status, r.text).toBe(200);
    expect(stack.backend.received.map((x) => x.url)).toEqual(['/v1/devices/dev-bob-1/history']);
  });
  test('connect POST /v1/%63onnections → forwarded as /v1/connections (or refused)', async () => {
    const r = await send(stack.sidecar.proxyPort, { method: 'POST', path: '/v1/%63onnections', body: '{}', headers: { ...keyHeader(stack.keys.connect), 'content-type': 'application/json' } });
    if (r.status < 300) expect(stack.backend.received.map((x) => x.url)).toEqual(['/v1/connections']);
    else {
      expect([400, 403]).toContain(r.status);
      expect(stack.backend.received).toHaveLength(0);
    }
  });
  test('server: an id needing encoding (space, unicode) is forwarded in one consistent encoded form', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices/dev%20x%C3%A9', headers: keyHeader(stack.keys.server) });
    // backend 404s; what matters is that what it got decodes to the same id and is not raw
    expect([404, 400]).toContain(r.status);
    for (const x of stack.backend.received) {
      expect(x.url).not.toMatch(/[ \u0080-\uffff]/);
      expect(decodeURIComponent(x.url)).toBe('/v1/devices/dev xé');
    }
  });
  test('POST command path with encoded action is forwarded canonical, body intact', async () => {
    const body = '{"deviceId":"dev-alice-1"}';
    const r = await send(stack.sidecar.proxyPort, {
      method: 'POST',
      path: '/v1/%63ommands/thermostat/%73et',
      body,
      headers: { ...keyHeader(stack.keys.alice), 'content-type': 'application/json' },
    });
    if (r.status < 300) {
      const w = writes(stack.backend);
      expect(w.map((x) => x.url)).toEqual(['/v1/commands/thermostat/set']);
      expect(w[0]!.body.toString()).toBe(body);
    } else {
      expect([400, 403]).toContain(r.status);
      expect(writes(stack.backend)).toHaveLength(0);
    }
  });
});
