// The key table (README: What Keygate enforces), verified against what the backend RECEIVED.
import { describe, expect, test } from 'vitest';
import { errorBody, keyHeader, send, useStack, writes } from './harness.ts';

const stack = useStack();

const LOOKUP = /^\/v1\/devices\/[^/?]+$/;
/** backend requests that are not a possible owner lookup (GET /v1/devices/{id}) */
function forwardedOtherThanLookups() {
  return stack.backend.received.filter((r) => !(r.method === 'GET' && LOOKUP.test(r.url)));
}

describe('server key: everything', () => {
  const cases: Array<[string, string, string?]> = [
    ['GET', '/v1/devices'],
    ['GET', '/v1/devices/dev-bob-1'],
    ['GET', '/v1/devices/dev-alice-1/history'],
    ['GET', '/v1/sites'],
    ['POST', '/v1/sites', '{"name":"x"}'],
    ['DELETE', '/v1/devices/dev-bob-1'],
    ['PUT', '/v1/devices/dev-bob-1/tags', '{"tags":["a"]}'],
    ['POST', '/v1/commands/thermostat/setpoint', '{"deviceId":"dev-bob-1","value":20}'],
    ['GET', '/v1/commands/cmd-bob-1'],
  ];
  test.each(cases)('server %s %s is forwarded unchanged', async (method, path, body) => {
    const r = await send(stack.sidecar.proxyPort, {
      method,
      path,
      body,
      headers: { ...keyHeader(stack.keys.server), ...(body ? { 'content-type': 'application/json' } : {}) },
    });
    expect(r.status, r.text).toBeLessThan(300);
    const hit = stack.backend.received.filter((x) => x.method === method && x.url === path);
    expect(hit, JSON.stringify(stack.backend.received.map((x) => [x.method, x.url]))).toHaveLength(1);
    if (body) expect(hit[0]!.body.toString()).toBe(body);
  });

  test('server POST /v1/connections is answered by Keygate (a Connect link), never forwarded', async () => {
    const r = await send(stack.sidecar.proxyPort, {
      method: 'POST',
      path: '/v1/connections',
      body: '{"redirectUrl":"https://app.example/cb"}',
      headers: { ...keyHeader(stack.keys.server), 'content-type': 'application/json' },
    });
    expect(r.status, r.text).toBe(201);
    expect(r.json).toMatchObject({ linkUrl: expect.stringContaining('/connect/links/') });
    expect(stack.backend.received).toEqual([]);
  });

  test('server GET /v1/api-keys is answered by Keygate itself (the key management API): the backend receives nothing', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/api-keys', headers: keyHeader(stack.keys.server) });
    expect(r.status, r.text).toBe(200);
    expect((r.json as { data: Array<{ id: string }> }).data.map((k) => k.id)).toContain(stack.keys.server.id);
    expect(stack.backend.received).toHaveLength(0);
  });

  test('server GET /v1/devices gets no referenceId injected and sees everyone', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(stack.keys.server) });
    expect(r.status).toBe(200);
    expect((r.json as { data: unknown[] }).data).toHaveLength(4);
    expect(stack.backend.received.at(-1)!.url).toBe('/v1/devices');
  });
});

describe('connect key: only POST /v1/connections', () => {
  test('connect POST /v1/connections is answered by Keygate, never forwarded (this key registered no redirect: 400)', async () => {
    const r = await send(stack.sidecar.proxyPort, {
      method: 'POST',
      path: '/v1/connections',
      body: '{"redirectUrl":"https://app.example/cb"}',
      headers: { ...keyHeader(stack.keys.connect), 'content-type': 'application/json' },
    });
    expect(r.status, r.text).toBe(400);
    expect((r.json as { error: { code: string } }).error.code).toBe('REDIRECT_NOT_ALLOWED');
    expect(stack.backend.received).toEqual([]);
  });

  const denied: Array<[string, string]> = [
    ['GET', '/v1/connections'],
    ['PUT', '/v1/connections'],
    ['DELETE', '/v1/connections'],
    ['PATCH', '/v1/connections'],
    ['GET', '/v1/devices'],
    ['GET', '/v1/devices/dev-alice-1'],
    ['GET', '/v1/devices/dev-alice-1/history'],
    ['POST', '/v1/commands/thermostat/setpoint'],
    ['GET', '/v1/commands/cmd-alice-1'],
    ['GET', '/v1/sites'],
    ['POST', '/v1/sites'],
    ['GET', '/v1/api-keys'],
    ['POST', '/v1/api-keys'],
    ['DELETE', '/v1/devices/dev-alice-1'],
    ['GET', '/'],
    ['GET', '/v1'],
    ['POST', '/v1/connections/extra'],
  ];
  test.each(denied)('connect %s %s → 403, backend received nothing', async (method, path) => {
    const body = method === 'GET' || method === 'DELETE' ? undefined : '{"deviceId":"dev-alice-1"}';
    const r = await send(stack.sidecar.proxyPort, {
      method,
      path,
      body,
      headers: { ...keyHeader(stack.keys.connect), ...(body ? { 'content-type': 'application/json' } : {}) },
    });
    expect(r.status, r.text).toBe(403);
    const e = errorBody(r);
    expect(e.error.status).toBe(403);
    expect(stack.backend.received).toHaveLength(0);
  });
});

describe('scoped key (alice)', () => {
  test('GET /v1/devices: backend receives exactly one referenceId=alice', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(stack.keys.alice) });
    expect(r.status, r.text).toBe(200);
    const lists = stack.backend.received.filter((x) => x.url.startsWith('/v1/devices?') || x.url === '/v1/devices');
    expect(lists).toHaveLength(1);
    const q = new URL(lists[0]!.url, 'http://x').searchParams;
    expect(q.getAll('referenceId')).toEqual(['alice']);
    const data = (r.json as { data: Array<{ referenceId: string }> }).data;
    expect(data.length).toBe(2);
    expect(data.every((d) => d.referenceId === 'alice')).toBe(true);
  });

  const own = ['/v1/devices/dev-alice-1', ...['history', 'alerts', 'tags', 'commands', 'schedules'].map((s) => `/v1/devices/dev-alice-1/${s}`)];
  test.each(own)('GET %s (own) → 200 and forwarded', async (path) => {
    const r = await send(stack.sidecar.proxyPort, { path, headers: keyHeader(stack.keys.alice) });
    expect(r.status, r.text).toBe(200);
    expect(stack.backend.received.some((x) => x.method === 'GET' && x.url === path)).toBe(true);
    expect(r.text).not.toMatch(/BOB/);
  });

  const foreign = ['/v1/devices/dev-bob-1', ...['history', 'alerts', 'tags', 'commands', 'schedules'].map((s) => `/v1/devices/dev-bob-1/${s}`)];
  test.each(foreign)('GET %s (foreign) → 403 and bob data never reaches client', async (path) => {
    const r = await send(stack.sidecar.proxyPort, { path, headers: keyHeader(stack.keys.alice) });
    expect(r.status, r.text).toBe(403);
    errorBody(r);
    expect(r.text).not.toMatch(/BOB|dev-bob|Bob/);
    expect(writes(stack.backend)).toHaveLength(0);
  });

  test('GET a nonexistent device → not 200, nothing leaked', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices/dev-nobody', headers: keyHeader(stack.keys.alice) });
    expect([403, 404]).toContain(r.status);
    expect(writes(stack.backend)).toHaveLength(0);
  });

  const forbidden: Array<[string, string, string?]> = [
    ['PUT', '/v1/devices/dev-alice-1/tags', '{"tags":["x"]}'],
    ['POST', '/v1/devices/dev-alice-1/tags', '{"tags":["x"]}'],
    ['PATCH', '/v1/devices/dev-alice-1', '{"name":"x"}'],
    ['PUT', '/v1/devices/dev-alice-1', '{"name":"x"}'],
    ['DELETE', '/v1/devices/dev-alice-1'],
    ['DELETE', '/v1/devices/dev-bob-1'],
    ['POST', '/v1/devices', '{"referenceId":"alice"}'],
    ['POST', '/v1/sites', '{"name":"x"}'],
    ['GET', '/v1/sites'],
    ['GET', '/v1/sites/site-1'],
    ['GET', '/v1/api-keys'],
    ['POST', '/v1/api-keys', '{"type":"server"}'],
    ['POST', '/v1/connections', '{}'],
    ['GET', '/v1/customers'],
    ['GET', '/v1/programs'],
    ['DELETE', '/v1/devices/dev-alice-1/tags'],
    ['DELETE', '/v1/commands/cmd-alice-1'],
    ['PUT', '/v1/devices/dev-alice-1/schedules', '{}'],
    ['GET', '/'],
    ['GET', '/v2/devices'],
    ['GET', '/v1/devices/dev-alice-1/history/extra'],
    ['GET', '/v1/devices/dev-alice-1/secrets'],
  ];
  test.each(forbidden)('scoped %s %s → 403, nothing forwarded', async (method, path, body) => {
    const r = await send(stack.sidecar.proxyPort, {
      method,
      path,
      body,
      headers: { ...keyHeader(stack.keys.alice), ...(body ? { 'content-type': 'application/json' } : {}) },
    });
    expect(r.status, r.text).toBe(403);
    errorBody(r);
    expect(forwardedOtherThanLookups(), JSON.stringify(stack.backend.received.map((x) => [x.method, x.url]))).toHaveLength(0);
  });

  test('POST /v1/commands/{type}/{action} own device → forwarded with the same bytes', async () => {
    const body = '{ "deviceId" : "dev-alice-1",\n  "payload": {"temp": 21.50, "unit":"C"} }';
    const r = await send(stack.sidecar.proxyPort, {
      method: 'POST',
      path: '/v1/commands/thermostat/set-temperature',
      body,
      headers: { ...keyHeader(stack.keys.alice), 'content-type': 'application/json' },
    });
    expect(r.status, r.text).toBe(201);
    const posts = writes(stack.backend);
    expect(posts).toHaveLength(1);
    expect(posts[0]!.url).toBe('/v1/commands/thermostat/set-temperature');
    expect(posts[0]!.body.equals(Buffer.from(body))).toBe(true);
  });

  test('POST command with foreign deviceId → 403, backend received no POST', async () => {
    const r = await send(stack.sidecar.proxyPort, {
      method: 'POST',
      path: '/v1/commands/thermostat/set-temperature',
      body: '{"deviceId":"dev-bob-1","payload":{}}',
      headers: { ...keyHeader(stack.keys.alice), 'content-type': 'application/json' },
    });
    expect(r.status, r.text).toBe(403);
    errorBody(r);
    expect(writes(stack.backend)).toHaveLength(0);
  });

  test('POST command with nonexistent / missing / non-string deviceId → refused, no POST', async () => {
    for (const body of ['{"deviceId":"dev-nobody"}', '{}', '{"deviceId":["dev-alice-1"]}', '{"deviceId":null}', '{"deviceId":{"id":"dev-alice-1"}}', '[]', 'null']) {
      const r = await send(stack.sidecar.proxyPort, {
        method: 'POST',
        path: '/v1/commands/thermostat/set',
        body,
        headers: { ...keyHeader(stack.keys.alice), 'content-type': 'application/json' },
      });
      expect([400, 403, 404, 422], `${body} → ${r.status} ${r.text}`).toContain(r.status);
    }
    expect(writes(stack.backend)).toHaveLength(0);
  });

  test('GET /v1/commands/{id} of a foreign device command → 403, never leaked', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/commands/cmd-bob-1', headers: keyHeader(stack.keys.alice) });
    expect(r.status, r.text).toBe(403);
    expect(r.text).not.toMatch(/BOB_CMD|dev-bob/);
  });

  test('GET /v1/commands (list) with scoped key never leaks bob commands', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/commands', headers: keyHeader(stack.keys.alice) });
    expect(r.text).not.toMatch(/BOB_CMD|dev-bob/);
  });
});
