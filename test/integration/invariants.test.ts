import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Fixture, startFixture } from '../helpers/fixture.ts';
import { key, send, sendRaw, statusOfRaw } from '../helpers/http.ts';

// The security invariants (README: Security), each attacked from outside through the real sidecar.
let f: Fixture;
beforeAll(async () => {
  f = await startFixture();
});
afterAll(async () => f.close());
beforeEach(() => {
  f.take();
  f.backend.behaviour.ignoreFilter = false;
  f.backend.behaviour.commandDeviceOverride = null;
});

const forwarded = () => f.take().filter((r) => r.headers['x-keygate-purpose'] === undefined);
const json = { 'content-type': 'application/json' };

describe('invariant 1: default deny', () => {
  it.each(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'])('%s on a route no rule matches is refused for scoped and connect keys', async (method) => {
    for (const k of [f.keys.alice, f.keys.connect]) {
      const r = await send(f.sidecar.url, method, '/v1/not-a-route', { headers: key(k) });
      expect(r.status).toBe(403);
    }
    expect(forwarded()).toHaveLength(0);
  });

  it('a method outside the policy language is 405 with an Allow header', async () => {
    const r = await send(f.sidecar.url, 'TRACE', '/v1/devices', { headers: key(f.keys.server) });
    expect(r.status).toBe(405);
    expect(r.headers.allow).toContain('GET');
    expect(forwarded()).toHaveLength(0);
  });
});

describe('invariant 2: the path judged is the path forwarded', () => {
  const refused = [
    '/v1/devices/dev_alice_1%2F..%2Fdev_bob_1',
    '/v1/devices/dev_bob_1%2fhistory',
    '/v1/devices%2Fdev_bob_1',
    '/v1/devices/dev_alice_1%5C..%5Cdev_bob_1',
    '/v1/devices/dev_alice_1\\..\\dev_bob_1',
    '/v1/devices/dev_alice_1%00',
    '/v1/devices/dev_alice_1/../dev_bob_1',
    '/v1/devices/./dev_alice_1',
    '/v1/devices/dev_alice_1/%2e%2e/dev_bob_1',
    '/v1/devices/%2E',
    '/v1//devices',
    '//v1/devices',
    '/v1/devices/',
    '/v1/devices;referenceId=bob',
    '/v1/devices/dev_bob_1;x=1',
    '/v1/devices/dev_alice_1%3Bx',
    '/v1/devices/%zz',
    '/v1/devices/%C0%AF',
  ];
  it.each(refused)('%s is 400 INVALID_PATH and never forwarded', async (path) => {
    const r = await send(f.sidecar.url, 'GET', path, { headers: key(f.keys.alice) });
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('INVALID_PATH');
    expect(forwarded()).toHaveLength(0);
  });

  it('absolute-form and asterisk-form targets are refused', async () => {
    for (const target of ['http://evil.example/v1/devices', 'http://127.0.0.1/v1/devices', '*']) {
      const raw = await sendRaw(f.sidecar.url, `GET ${target} HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${f.keys.alice}\r\nConnection: close\r\n\r\n`);
      expect(statusOfRaw(raw)).toBe(400);
    }
    expect(forwarded()).toHaveLength(0);
  });

  it('percent-encoded ordinary characters are judged decoded and forwarded in canonical form', async () => {
    const r = await send(f.sidecar.url, 'GET', '/v1/%64evices/dev_%61lice_1/%68istory', { headers: key(f.keys.alice) });
    expect(r.status).toBe(200);
    expect(forwarded().map((x) => x.url)).toEqual(['/v1/devices/dev_alice_1/history']);
  });

  it('matching is case-sensitive: /V1/Devices is no route a scoped key has', async () => {
    const r = await send(f.sidecar.url, 'GET', '/V1/Devices', { headers: key(f.keys.alice) });
    expect(r.status).toBe(403);
    expect(forwarded()).toHaveLength(0);
  });
});

describe('invariant 3: an injected filter is the only one', () => {
  const variants = [
    'referenceId=bob',
    'ReferenceId=bob',
    'REFERENCEID=bob',
    '%72eferenceId=bob',
    '%52EFERENCEID=bob',
    'referenceId[]=bob',
    'referenceId%5B%5D=bob',
    'referenceId[0]=bob',
    'referenceId=bob&referenceId=alice',
    'referenceId=alice&referenceId=bob',
    'x=1;referenceId=bob',
    'referenceId=bob,alice',
    '+referenceId=bob',
    'referenceId%20=bob',
    'referenceId.x=bob',
  ];
  it.each(variants)('?%s: the backend receives exactly referenceId=alice', async (q) => {
    const r = await send(f.sidecar.url, 'GET', `/v1/devices?${q}&perPage=10`, { headers: key(f.keys.alice) });
    expect(r.status).toBe(200);
    for (const d of r.json.data) expect(d.referenceId).toBe('alice');
    const got = forwarded();
    expect(got).toHaveLength(1);
    expect(got[0]!.query.getAll('referenceId')).toEqual(['alice']);
    expect(decodeURIComponent(got[0]!.url)).not.toMatch(/bob/i);
    expect(got[0]!.query.get('perPage')).toBe('10');
  });
});

describe('invariant 4: a scoped key changes nothing but its own device by command', () => {
  it.each(['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override'])('%s never reaches the backend and never turns a read into a write', async (h) => {
    const r = await send(f.sidecar.url, 'GET', '/v1/devices/dev_alice_1', { headers: { ...key(f.keys.alice), [h]: 'DELETE' } });
    expect(r.status).toBe(200);
    const got = forwarded();
    expect(got).toHaveLength(1);
    expect(got[0]!.method).toBe('GET');
    for (const name of Object.keys(got[0]!.headers)) expect(name).not.toMatch(/method/i);
    expect(f.backend.devices.some((d) => d.id === 'dev_alice_1')).toBe(true);
  });

  it('_method in the query never reaches the backend', async () => {
    await send(f.sidecar.url, 'GET', '/v1/devices?_method=DELETE&%5Fmethod=PUT&_METHOD=PATCH', { headers: key(f.keys.alice) });
    const got = forwarded();
    expect(got[0]!.url).not.toMatch(/method/i);
  });

  it('_method is stripped for server keys too', async () => {
    await send(f.sidecar.url, 'POST', '/v1/sites?_method=DELETE', { headers: { ...key(f.keys.server), ...json }, body: '{}' });
    expect(forwarded()[0]!.url).toBe('/v1/sites');
  });

  it('duplicate JSON keys are refused before anything is forwarded', async () => {
    const r = await send(f.sidecar.url, 'POST', '/v1/commands/thermostat/set', { headers: { ...key(f.keys.alice), ...json }, body: '{"deviceId":"dev_alice_1","deviceId":"dev_bob_1"}' });
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('DUPLICATE_JSON_KEY');
    expect(forwarded()).toHaveLength(0);
  });

  it('escaped duplicate keys are duplicates too', async () => {
    const r = await send(f.sidecar.url, 'POST', '/v1/commands/thermostat/set', { headers: { ...key(f.keys.alice), ...json }, body: '{"deviceId":"dev_alice_1","device\\u0049d":"dev_bob_1"}' });
    expect(r.status).toBe(400);
    expect(forwarded()).toHaveLength(0);
  });

  it.each([
    [{ 'content-type': 'text/plain' }, 415],
    [{ 'content-type': 'application/x-www-form-urlencoded' }, 415],
    [{}, 415],
    [{ 'content-type': 'application/json', 'content-encoding': 'gzip' }, 415],
    [{ 'content-type': 'application/json', 'content-encoding': 'identity, gzip' }, 415],
  ] as const)('a command body with %o is refused with %i', async (headers, status) => {
    const r = await send(f.sidecar.url, 'POST', '/v1/commands/thermostat/set', { headers: { ...key(f.keys.alice), ...headers }, body: '{"deviceId":"dev_alice_1"}' });
    expect(r.status).toBe(status);
    expect(r.json.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(forwarded()).toHaveLength(0);
  });

  it('an oversized command body is 413', async () => {
    const body = JSON.stringify({ deviceId: 'dev_alice_1', input: 'x'.repeat(2 * 1024 * 1024) });
    const r = await send(f.sidecar.url, 'POST', '/v1/commands/thermostat/set', { headers: { ...key(f.keys.alice), ...json }, body });
    expect(r.status).toBe(413);
    expect(forwarded()).toHaveLength(0);
  });

  it('malformed JSON and a missing deviceId are 400', async () => {
    for (const body of ['{"deviceId":', '[]', '{"input":{}}', '{"deviceId":{"$ne":null}}']) {
      const r = await send(f.sidecar.url, 'POST', '/v1/commands/thermostat/set', { headers: { ...key(f.keys.alice), ...json }, body });
      expect(r.status).toBe(400);
    }
    expect(forwarded()).toHaveLength(0);
  });
});

describe('invariant 5: no other user’s data reaches a scoped client', () => {
  it('even when the backend ignores the referenceId filter', async () => {
    f.backend.behaviour.ignoreFilter = true;
    const r = await send(f.sidecar.url, 'GET', '/v1/devices', { headers: key(f.keys.alice) });
    expect(r.status).toBe(200);
    expect(r.json.data.length).toBeGreaterThan(0);
    for (const d of r.json.data) expect(d.referenceId).toBe('alice');
    expect(r.text).not.toContain('bob');
    // The server key, unfiltered, shows the backend really did return bob's devices.
    const all = await send(f.sidecar.url, 'GET', '/v1/devices', { headers: key(f.keys.server) });
    expect(all.text).toContain('dev_bob_1');
  });

  it('a command whose device belongs to another user is 403 on read', async () => {
    const cmd = await send(f.sidecar.url, 'POST', '/v1/commands/thermostat/set', { headers: { ...key(f.keys.alice), ...json }, body: '{"deviceId":"dev_alice_1"}' });
    f.backend.behaviour.commandDeviceOverride = 'dev_bob_1';
    const r = await send(f.sidecar.url, 'GET', `/v1/commands/${cmd.json.id}`, { headers: key(f.keys.alice) });
    expect(r.status).toBe(403);
    expect(r.text).not.toContain('dev_bob_1');
  });
});

describe('invariant 6: keys are stored hashed and never logged', () => {
  it('the SQLite file holds no plaintext key', () => {
    const bytes = readFileSync(f.store.slice('sqlite:'.length));
    const wal = (() => {
      try {
        return readFileSync(f.store.slice('sqlite:'.length) + '-wal');
      } catch {
        return Buffer.alloc(0);
      }
    })();
    for (const k of [f.keys.server, f.keys.connect, f.keys.alice, f.keys.bob]) {
      expect(bytes.includes(k)).toBe(false);
      expect(wal.includes(k)).toBe(false);
    }
  });

  it('no log line and no metric holds a key, even a rejected one', async () => {
    const bogus = f.keys.alice.slice(0, -3) + 'zzz';
    await send(f.sidecar.url, 'GET', '/v1/devices', { headers: key(bogus) });
    await send(f.sidecar.url, 'GET', '/v1/sites', { headers: key(f.keys.alice) });
    const metrics = await send(f.sidecar.opsUrl, 'GET', '/metrics');
    await new Promise((r) => setTimeout(r, 100));
    const everything = f.sidecar.stdout() + f.sidecar.stderr() + metrics.text;
    for (const k of [f.keys.server, f.keys.connect, f.keys.alice, f.keys.bob, bogus]) expect(everything.includes(k)).toBe(false);
  });

  it('the key header never reaches the backend; client X-Keygate-* headers are replaced', async () => {
    await send(f.sidecar.url, 'GET', '/v1/devices', { headers: { ...key(f.keys.alice), 'X-Keygate-Reference-Id': 'bob', 'x-keygate-key-type': 'server', 'X-Keygate-Anything': '1' } });
    const h = forwarded()[0]!.headers;
    expect(h['texture-api-key']).toBeUndefined();
    expect(h['x-keygate-reference-id']).toBe('alice');
    expect(h['x-keygate-key-type']).toBe('scoped');
    expect(h['x-keygate-key-id']).toBe(f.keys.ids.alice);
    expect(h['x-keygate-anything']).toBeUndefined();
  });
});
