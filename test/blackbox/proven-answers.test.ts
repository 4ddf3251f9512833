// Invariant 5 on routes proven by a lookup of the request (a device's sub-resources, a
// command sent to a device): the lookup proves the request's device is alice's, and the
// answer must then be about that device alone. The backend here answers like one that
// ignores the path's id or mixes other users' objects into an answer; the test asserts
// what alice received, through real HTTP, against a real backend process.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { type FrameworkBackend, startFramework } from './frameworks.ts';
import { createKeySet, errorBody, type KeySet, keyHeader, type Sidecar, send, startSidecar } from './harness.ts';

let fw: FrameworkBackend;
let keys: KeySet;
let sidecar: Sidecar;

beforeAll(async () => {
  fw = await startFramework();
  keys = await createKeySet();
  sidecar = await startSidecar({ upstream: fw.url, store: keys.store });
});
afterAll(async () => {
  await sidecar?.stop();
  await fw?.close();
});
beforeEach(() => {
  fw.reset();
  fw.quirks = {};
});

/** Answers every request but the attribute lookups with `body` (status 200 unless given). */
function answerWith(body: string, status = 200, headers: Record<string, string> = {}): void {
  fw.respond = (rec) => (rec.headers['x-keygate-purpose'] === 'attribute-lookup' ? undefined : { status, headers, body });
}

const HISTORY = '/v1/devices/dev-alice-1/history';
const COMMAND = '/v1/commands/thermostat/set-temperature';

describe("a device's sub-resources: the answer is about the proven device alone", () => {
  test.each([
    ['an entry of another device', '{"data":[{"id":"h1","deviceId":"dev-alice-1"},{"id":"h2","deviceId":"dev-bob-1","secret":"BOB_SECRET"}]}'],
    ["another user's object nested in an entry", '{"data":[{"id":"h1","deviceId":"dev-alice-1","device":{"referenceId":"bob","note":"BOB_SECRET"}}]}'],
    ['the device id named twice', '{"data":[{"id":"h1","deviceId":"dev-alice-1","deviceId":"dev-bob-1","note":"BOB_SECRET"}]}'],
    ['the device id in a look-alike spelling', '{"data":[{"id":"h1","deviceId":"dev-alice-1","DeviceId":"dev-bob-1","note":"BOB_SECRET"}]}'],
    ['an owner escaped in its key', '{"data":[{"id":"h1","refer\\u0065nceId":"bob","note":"BOB_SECRET"}]}'],
  ])('%s → 403, nothing of it sent', async (_name, body) => {
    answerWith(body);
    const r = await send(sidecar.proxyPort, { path: HISTORY, headers: keyHeader(keys.alice) });
    expect(r.status, r.text).toBe(403);
    expect(errorBody(r).error.code).toBe('RESOURCE_NOT_ALLOWED');
    expect(r.text).not.toContain('BOB_SECRET');
  });

  test('an answer about the proven device is released as the backend wrote it', async () => {
    const body = '{"data":[{"id":"h1","deviceId":"dev-alice-1","value":21.5,"device":{"referenceId":"alice"}}],"page":1}';
    answerWith(body);
    const r = await send(sidecar.proxyPort, { path: HISTORY, headers: keyHeader(keys.alice) });
    expect(r.status, r.text).toBe(200);
    expect(r.text).toBe(body);
  });

  test('the same foreign answer to a server key is released (it reaches everything)', async () => {
    const body = '{"data":[{"id":"h2","deviceId":"dev-bob-1"}]}';
    answerWith(body);
    const r = await send(sidecar.proxyPort, { path: HISTORY, headers: keyHeader(keys.server) });
    expect(r.status, r.text).toBe(200);
    expect(r.text).toBe(body);
  });

  test('a long history (checked off the event loop): released whole when it is about the device alone, 403 with one foreign entry at its end', async () => {
    const entries = Array.from({ length: 40_000 }, (_, i) => ({ id: `h${i}`, deviceId: 'dev-alice-1', value: i, note: 'temperature reading' }));
    const clean = JSON.stringify({ data: entries });
    expect(clean.length).toBeGreaterThan(1_000_000);
    answerWith(clean);
    const ok = await send(sidecar.proxyPort, { path: HISTORY, headers: keyHeader(keys.alice) });
    expect(ok.status).toBe(200);
    expect(ok.text).toBe(clean);
    answerWith(JSON.stringify({ data: [...entries, { id: 'hx', deviceId: 'dev-bob-1', note: 'BOB_SECRET' }] }));
    const bad = await send(sidecar.proxyPort, { path: HISTORY, headers: keyHeader(keys.alice) });
    expect(bad.status, bad.text.slice(0, 200)).toBe(403);
    expect(errorBody(bad).error.code).toBe('RESOURCE_NOT_ALLOWED');
    expect(bad.text).not.toContain('BOB_SECRET');
  });

  test('an answer that is not JSON cannot be proven → 502, its body withheld', async () => {
    answerWith('deviceId,value\ndev-bob-1,BOB_SECRET\n', 200, { 'content-type': 'text/csv' });
    const r = await send(sidecar.proxyPort, { path: HISTORY, headers: keyHeader(keys.alice) });
    expect(r.status, r.text).toBe(502);
    expect(r.text).not.toContain('BOB_SECRET');
  });

  test.each([
    ['a device by its singular name (Django REST Framework)', '{"data":[{"id":"h1","device":"dev-bob-1","note":"BOB_SECRET"}]}'],
    ['a device object (JSON:API, nested serialisers)', '{"data":[{"id":"h1","device":{"id":"dev-bob-1","note":"BOB_SECRET"}}]}'],
    ['a list of device ids', '{"data":[{"id":"h1","deviceIds":["dev-alice-1","dev-bob-1"],"note":"BOB_SECRET"}]}'],
    ['a device uuid', '{"data":[{"id":"h1","deviceUuid":"dev-bob-1","note":"BOB_SECRET"}]}'],
    ['a plural of device objects', '{"data":[{"id":"h1","devices":[{"id":"dev-bob-1","note":"BOB_SECRET"}]}]}'],
    ['a plural of device ids', '{"data":[{"id":"h1","devices":["dev-alice-1","dev-bob-1"],"note":"BOB_SECRET"}]}'],
    ['an object of devices keyed by id', '{"data":[{"id":"h1","devices":{"dev-bob-1":{"note":"BOB_SECRET"}}}]}'],
    ['a JSON:API relationship', '{"data":[{"id":"h1","relationships":{"device":{"data":{"type":"devices","id":"dev-bob-1"}}},"note":"BOB_SECRET"}]}'],
    ['a JSON:API included resource', '{"data":[{"id":"h1"}],"included":[{"type":"devices","id":"dev-bob-1","attributes":{"note":"BOB_SECRET"}}]}'],
    ['a HAL link', '{"data":[{"id":"h1","_links":{"device":{"href":"/v1/devices/dev-bob-1"}},"note":"BOB_SECRET"}]}'],
    ['a device object by uuid', '{"data":[{"id":"h1","device":{"uuid":"dev-bob-1"},"note":"BOB_SECRET"}]}'],
    ['a prefixed id name', '{"data":[{"id":"h1","targetDeviceId":"dev-bob-1","note":"BOB_SECRET"}]}'],
    ['a look-alike id name with a blank', '{"data":[{"id":"h1","device id":"dev-bob-1","note":"BOB_SECRET"}]}'],
    ['ids as a comma-separated string', '{"data":[{"id":"h1","deviceIds":"dev-alice-1,dev-bob-1","note":"BOB_SECRET"}]}'],
    ['a PascalCase device object (.NET, Go structs)', '{"data":[{"Id":"h1","Device":{"Id":"dev-bob-1"},"Note":"BOB_SECRET"}]}'],
    ['a device object with an upper-case ID', '{"data":[{"id":"h1","device":{"ID":"dev-bob-1"},"note":"BOB_SECRET"}]}'],
    ['PascalCase device objects', '{"data":[{"id":"h1","Devices":[{"Id":"dev-bob-1"}],"note":"BOB_SECRET"}]}'],
    ['a device object by Uuid', '{"data":[{"id":"h1","device":{"Uuid":"dev-bob-1"},"note":"BOB_SECRET"}]}'],
    ['a device object by MongoDB _id', '{"data":[{"id":"h1","device":{"_id":"dev-bob-1"},"note":"BOB_SECRET"}]}'],
    ['a device object by Django pk', '{"data":[{"id":"h1","device":{"pk":"dev-bob-1"},"note":"BOB_SECRET"}]}'],
    ['a JSON:API relationship in PascalCase', '{"data":[{"id":"h1","Relationships":{"Device":{"Data":{"Type":"devices","Id":"dev-bob-1"}}},"note":"BOB_SECRET"}]}'],
  ])('another device named as %s → 403', async (_name, body) => {
    answerWith(body);
    const r = await send(sidecar.proxyPort, { path: HISTORY, headers: keyHeader(keys.alice) });
    expect(r.status, r.text).toBe(403);
    expect(r.text).not.toContain('BOB_SECRET');
  });

  test.each([409, 422, 302, 500])("an answer with status %i holding another user's object keeps its status, not its body", async (status) => {
    answerWith('{"error":"conflict","data":[{"deviceId":"dev-bob-1","referenceId":"bob","secret":"BOB_SECRET"}]}', status);
    const r = await send(sidecar.proxyPort, { path: HISTORY, headers: keyHeader(keys.alice) });
    expect(r.status, r.text).toBe(status);
    expect(errorBody(r).error.code).toBe('UPSTREAM_ERROR');
    expect(r.text).not.toContain('BOB_SECRET');
  });

  test('an error about the request is released as it comes', async () => {
    answerWith('{"error":"no history yet"}', 404);
    const r = await send(sidecar.proxyPort, { path: HISTORY, headers: keyHeader(keys.alice) });
    expect(r.status, r.text).toBe(404);
    expect(r.text).toBe('{"error":"no history yet"}');
  });
});

describe("a command's answer names the device the command was proven for", () => {
  test("an answer naming another device (the backend acted on another) → 403, the other device's answer withheld", async () => {
    answerWith('{"id":"cmd-9","deviceId":"dev-bob-1","status":"BOB_PENDING"}', 201);
    const r = await send(sidecar.proxyPort, {
      method: 'POST',
      path: COMMAND,
      body: '{"deviceId":"dev-alice-1","input":{}}',
      headers: { ...keyHeader(keys.alice), 'content-type': 'application/json' },
    });
    expect(r.status, r.text).toBe(403);
    expect(r.text).not.toContain('BOB_PENDING');
  });

  test('the ordinary answer passes', async () => {
    const r = await send(sidecar.proxyPort, {
      method: 'POST',
      path: COMMAND,
      body: '{"deviceId":"dev-alice-1","input":{}}',
      headers: { ...keyHeader(keys.alice), 'content-type': 'application/json' },
    });
    expect(r.status, r.text).toBe(201);
    expect(JSON.parse(r.text)).toMatchObject({ deviceId: 'dev-alice-1' });
  });
});

// GET /v1/commands/{id} is proven by the answer's own deviceId (a lookup of it): the rest
// of the answer may name no other device either, at any depth. Before, only owner fields
// were looked for there, and a `related` entry's deviceId or a nested device object of
// bob's went to alice.
describe('a command read: the answer names the proven device alone', () => {
  const READ = '/v1/commands/cmd-1';
  test.each([
    ['a related entry of another device', '{"id":"cmd-1","deviceId":"dev-alice-1","related":[{"deviceId":"dev-bob-1","v":"BOB_SECRET"}]}'],
    ['a nested device object of another', '{"id":"cmd-1","deviceId":"dev-alice-1","device":{"id":"dev-bob-1","note":"BOB_SECRET"}}'],
    ['a plural of device objects', '{"id":"cmd-1","deviceId":"dev-alice-1","devices":[{"id":"dev-bob-1","note":"BOB_SECRET"}]}'],
    ['a device uuid of another', '{"id":"cmd-1","deviceId":"dev-alice-1","deviceUuid":"dev-bob-1","note":"BOB_SECRET"}'],
    ['an object of devices keyed by id', '{"id":"cmd-1","deviceId":"dev-alice-1","devices":{"dev-bob-1":{"note":"BOB_SECRET"}}}'],
    ['a JSON:API included device', '{"id":"cmd-1","deviceId":"dev-alice-1","included":[{"type":"device","id":"dev-bob-1","attributes":{"note":"BOB_SECRET"}}]}'],
    ['a HAL link to another', '{"id":"cmd-1","deviceId":"dev-alice-1","_links":{"device":{"href":"/v1/devices/dev-bob-1"}},"note":"BOB_SECRET"}'],
  ])('%s → 403, nothing of it sent', async (_name, body) => {
    answerWith(body);
    const r = await send(sidecar.proxyPort, { path: READ, headers: keyHeader(keys.alice) });
    expect(r.status, r.text).toBe(403);
    expect(errorBody(r).error.code).toBe('RESOURCE_NOT_ALLOWED');
    expect(r.text).not.toContain('BOB_SECRET');
  });

  test('an answer about the proven device alone is released as written', async () => {
    const body =
      '{"id":"cmd-1","deviceId":"dev-alice-1","device":{"id":"dev-alice-1"},"related":[{"deviceId":"dev-alice-1"}],"_links":{"self":{"href":"/v1/commands/cmd-1"},"device":{"href":"/v1/devices/dev-alice-1"}},"included":[{"type":"devices","id":"dev-alice-1"}],"status":"done"}';
    answerWith(body);
    const r = await send(sidecar.proxyPort, { path: READ, headers: keyHeader(keys.alice) });
    expect(r.status, r.text).toBe(200);
    expect(r.text).toBe(body);
  });
});

describe("a device's own read (GET /v1/devices/{id}): about that device alone too", () => {
  const DEVICE = '/v1/devices/dev-alice-1';
  const own = '"id":"dev-alice-1","referenceId":"alice","name":"Alice thermostat"';
  test.each([
    ['another device by its id field', `{${own},"deviceId":"dev-bob-1","note":"BOB_SECRET"}`],
    ["a gateway's parent device", `{${own},"parentDeviceId":"dev-bob-1","note":"BOB_SECRET"}`],
    ['a device object', `{${own},"device":{"id":"dev-bob-1"},"note":"BOB_SECRET"}`],
    ['a list of device ids', `{${own},"deviceIds":["dev-bob-1"],"note":"BOB_SECRET"}`],
    ['PascalCase device objects', `{${own},"Devices":[{"Id":"dev-bob-1"}],"note":"BOB_SECRET"}`],
    ['a HAL link', `{${own},"_links":{"parent":{"href":"/v1/devices/dev-bob-1"}},"note":"BOB_SECRET"}`],
    ['a JSON:API included object', `{${own},"included":[{"type":"devices","id":"dev-bob-1"}],"note":"BOB_SECRET"}`],
    ['a device id name behind an escape', `{${own},"parent\\u0044eviceId":"dev-bob-1","note":"BOB_SECRET"}`],
    ['a device id name in mixed case', `{${own},"DeViCeId":"dev-bob-1","note":"BOB_SECRET"}`],
  ])('naming %s → 403, nothing of it sent', async (_name, body) => {
    answerWith(body);
    const r = await send(sidecar.proxyPort, { path: DEVICE, headers: keyHeader(keys.alice) });
    expect(r.status, r.text).toBe(403);
    expect(r.text).not.toContain('BOB_SECRET');
  });

  test.each([
    ['the plain device object', `{${own},"state":{"mode":"heat"}}`],
    ['one naming itself', `{${own},"deviceId":"dev-alice-1","_links":{"self":{"href":"/v1/devices/dev-alice-1"}}}`],
  ])('%s is released as the backend wrote it', async (_name, body) => {
    answerWith(body);
    const r = await send(sidecar.proxyPort, { path: DEVICE, headers: keyHeader(keys.alice) });
    expect(r.status, r.text).toBe(200);
    expect(r.text).toBe(body);
  });
});
