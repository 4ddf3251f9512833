import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Fixture, startFixture } from '../helpers/fixture.ts';
import { key, send } from '../helpers/http.ts';

// Every row of the key table (README: What Keygate enforces), through the real sidecar.
let f: Fixture;
beforeAll(async () => {
  f = await startFixture();
});
afterAll(async () => f.close());
beforeEach(() => {
  f.take();
});

const json = { 'content-type': 'application/json' };

describe('server keys: everything, including meta/config', () => {
  const cases: Array<[string, string, string?]> = [
    ['GET', '/v1/devices'],
    ['GET', '/v1/devices/dev_bob_1'],
    ['GET', '/v1/devices/dev_bob_1/history'],
    ['PUT', '/v1/devices/dev_bob_2/tags', '{"tags":["x"]}'],
    ['POST', '/v1/commands/thermostat/set', '{"deviceId":"dev_bob_1","input":{}}'],
    ['POST', '/v1/batch-commands', '{"commands":[]}'],
    ['GET', '/v1/sites'],
    ['POST', '/v1/sites', '{"name":"HQ"}'],
    ['GET', '/v1/contacts'],
    ['GET', '/v1/customers'],
    ['GET', '/v1/programs'],
    ['GET', '/v1/enrollments'],
  ];
  it.each(cases)('%s %s is forwarded unchanged', async (method, path, body) => {
    const r = await send(f.sidecar.url, method, path, { headers: { ...key(f.keys.server), ...(body ? json : {}) }, ...(body ? { body } : {}) });
    expect(r.status).toBeLessThan(300);
    const got = f.take();
    expect(got).toHaveLength(1);
    expect(got[0]!.method).toBe(method);
    expect(got[0]!.url).toBe(path);
    if (body) expect(got[0]!.body).toBe(body);
  });

  it('manages keys through Keygate itself: GET /v1/api-keys is answered, never forwarded', async () => {
    const r = await send(f.sidecar.url, 'GET', '/v1/api-keys', { headers: key(f.keys.server) });
    expect(r.status).toBe(200);
    expect(r.json.totalItems).toBe(4);
    expect(f.take()).toHaveLength(0);
  });

  it('sees every user’s devices (no filter injected)', async () => {
    const r = await send(f.sidecar.url, 'GET', '/v1/devices', { headers: key(f.keys.server) });
    expect(new Set(r.json.data.map((d: { referenceId: string }) => d.referenceId))).toEqual(new Set(['alice', 'bob']));
    expect(f.take()[0]!.query.has('referenceId')).toBe(false);
  });

  it('may DELETE a device', async () => {
    const r = await send(f.sidecar.url, 'DELETE', '/v1/devices/dev_bob_2', { headers: key(f.keys.server) });
    expect(r.status).toBe(200);
  });
});

describe('connect keys: only POST /v1/connections', () => {
  it('creates a Connect link: answered by Keygate itself, never forwarded', async () => {
    // This connect key registered no redirect URL, so the link is refused; the server key's is made.
    const body = '{"redirectUrl":"https://app.example/cb"}';
    const r = await send(f.sidecar.url, 'POST', '/v1/connections', { headers: { ...key(f.keys.connect), ...json }, body });
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('REDIRECT_NOT_ALLOWED');
    const made = await send(f.sidecar.url, 'POST', '/v1/connections', { headers: { ...key(f.keys.server), ...json }, body });
    expect(made.status).toBe(201);
    expect(made.json.linkUrl).toContain('/connect/links/');
    expect(f.take()).toHaveLength(0);
  });

  const denied: Array<[string, string]> = [
    ['GET', '/v1/devices'],
    ['GET', '/v1/devices/dev_alice_1'],
    ['POST', '/v1/commands/thermostat/set'],
    ['GET', '/v1/connections'],
    ['DELETE', '/v1/connections'],
    ['GET', '/v1/sites'],
    ['GET', '/v1/api-keys'],
    ['GET', '/v1/unknown-route'],
  ];
  it.each(denied)('%s %s is 403 and never forwarded', async (method, path) => {
    const r = await send(f.sidecar.url, method, path, { headers: { ...key(f.keys.connect), ...json }, body: '{"deviceId":"dev_alice_1"}' });
    expect(r.status).toBe(403);
    expect(r.json.error.code).toMatch(/_NOT_ALLOWED$/);
    expect(f.take()).toHaveLength(0);
  });
});

describe('scoped keys: own devices read + commands, nothing else', () => {
  it('lists only its own devices, with exactly one referenceId sent', async () => {
    const r = await send(f.sidecar.url, 'GET', '/v1/devices', { headers: key(f.keys.alice) });
    expect(r.status).toBe(200);
    expect(r.json.data.length).toBeGreaterThan(0);
    for (const d of r.json.data) expect(d.referenceId).toBe('alice');
    const got = f.take();
    expect(got).toHaveLength(1);
    expect(got[0]!.query.getAll('referenceId')).toEqual(['alice']);
  });

  it.each(['', '/history', '/alerts', '/tags', '/commands', '/schedules'])('reads its own device%s', async (sub) => {
    const r = await send(f.sidecar.url, 'GET', `/v1/devices/dev_alice_1${sub}`, { headers: key(f.keys.alice) });
    expect(r.status).toBe(200);
    const forwarded = f.take().filter((x) => x.headers['x-keygate-purpose'] === undefined);
    expect(forwarded.map((x) => x.path)).toEqual([`/v1/devices/dev_alice_1${sub}`]);
  });

  it.each(['', '/history', '/alerts', '/tags', '/commands', '/schedules'])('another user’s device%s is 403 and its data never reaches the client', async (sub) => {
    const r = await send(f.sidecar.url, 'GET', `/v1/devices/dev_bob_1${sub}`, { headers: key(f.keys.alice) });
    expect(r.status).toBe(403);
    expect(r.text).not.toContain('bob');
    // Only the ownership lookup reached the backend, never the read itself.
    const got = f.take();
    expect(got.every((x) => x.headers['x-keygate-purpose'] === 'attribute-lookup')).toBe(true);
    expect(got.filter((x) => x.path === `/v1/devices/dev_bob_1${sub}` && sub !== '')).toHaveLength(0);
  });

  it('a device that does not exist is 403 too (ids cannot be probed)', async () => {
    const r = await send(f.sidecar.url, 'GET', '/v1/devices/dev_nobody', { headers: key(f.keys.alice) });
    expect(r.status).toBe(403);
  });

  it('sends a command to its own device: the same bytes are forwarded', async () => {
    const body = '{ "deviceId": "dev_alice_1",\n  "input": {"heatSetpoint": 21.5} }';
    const r = await send(f.sidecar.url, 'POST', '/v1/commands/thermostat/set-temperature', { headers: { ...key(f.keys.alice), ...json }, body });
    expect(r.status).toBe(201);
    expect(r.json.deviceId).toBe('dev_alice_1');
    const posts = f.take().filter((x) => x.method === 'POST');
    expect(posts).toHaveLength(1);
    expect(posts[0]!.body).toBe(body);
    expect(posts[0]!.headers['content-length']).toBe(String(Buffer.byteLength(body)));
  });

  it('a command to another user’s device is 403 and nothing is posted', async () => {
    const r = await send(f.sidecar.url, 'POST', '/v1/commands/thermostat/set-temperature', { headers: { ...key(f.keys.alice), ...json }, body: '{"deviceId":"dev_bob_1","input":{}}' });
    expect(r.status).toBe(403);
    expect(f.take().filter((x) => x.method === 'POST')).toHaveLength(0);
  });

  it('reads its own command, not another user’s', async () => {
    const own = await send(f.sidecar.url, 'POST', '/v1/commands/thermostat/set', { headers: { ...key(f.keys.alice), ...json }, body: '{"deviceId":"dev_alice_1","input":{}}' });
    const theirs = await send(f.sidecar.url, 'POST', '/v1/commands/thermostat/set', { headers: { ...key(f.keys.bob), ...json }, body: '{"deviceId":"dev_bob_1","input":{}}' });
    expect((await send(f.sidecar.url, 'GET', `/v1/commands/${own.json.id}`, { headers: key(f.keys.alice) })).status).toBe(200);
    const r = await send(f.sidecar.url, 'GET', `/v1/commands/${theirs.json.id}`, { headers: key(f.keys.alice) });
    expect(r.status).toBe(403);
    expect(r.text).not.toContain('dev_bob_1');
  });

  const denied: Array<[string, string]> = [
    ['PUT', '/v1/devices/dev_alice_1/tags'],
    ['DELETE', '/v1/devices/dev_alice_1'],
    ['PATCH', '/v1/devices/dev_alice_1'],
    ['POST', '/v1/devices'],
    ['POST', '/v1/batch-commands'],
    ['GET', '/v1/sites'],
    ['POST', '/v1/sites'],
    ['GET', '/v1/contacts'],
    ['GET', '/v1/customers'],
    ['GET', '/v1/programs'],
    ['GET', '/v1/enrollments'],
    ['POST', '/v1/connections'],
    ['GET', '/v1/api-keys'],
    ['GET', '/v1/anything-else'],
  ];
  it.each(denied)('%s %s is 403 and never forwarded', async (method, path) => {
    const r = await send(f.sidecar.url, method, path, { headers: { ...key(f.keys.alice), ...json }, body: '{"deviceId":"dev_alice_1","tags":["x"]}' });
    expect(r.status).toBe(403);
    expect(f.take().filter((x) => x.headers['x-keygate-purpose'] === undefined)).toHaveLength(0);
  });
});
