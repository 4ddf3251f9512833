// Invariant 9, one meaning: what the backend receives can be read only the way the policy
// judged it. Each attack is sent through real HTTP to a sidecar in front of a backend that
// parses like the framework named (frameworks.ts), and the test asserts what that backend
// received and did: no command on bob's device, nothing of bob's read, no record changed
// that the key may not change.

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { BIG_BOB, cliKey, type FrameworkBackend, startFramework } from './frameworks.ts';
import { BIN, createKey, createKeySet, errorBody, type KeyInfo, type KeySet, keyHeader, POLICIES, ROOT, rawSend, type Sidecar, send, startSidecar, tempStore } from './harness.ts';

const execFileP = promisify(execFile);

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

const COMMAND = '/v1/commands/thermostat/set-temperature';
/** Valid JSON naming alice's device; read as a form it names bob's (`…&deviceId=dev-bob-1&…`). */
const SMUGGLING_BODY = '{"deviceId":"dev-alice-1","note":"&deviceId=dev-bob-1&"}';

function post(path: string, body: string, headers: Record<string, string | string[]>, key: KeyInfo = keys.alice) {
  return send(sidecar.proxyPort, { method: 'POST', path, body, headers: { ...keyHeader(key), ...headers } });
}

/** A raw HTTP/1.1 request (repeated headers, exact spellings) from alice. */
function raw(method: string, path: string, headerLines: string[], body = '', key: KeyInfo = keys.alice) {
  const head = [`${method} ${path} HTTP/1.1`, 'Host: keygate.test', `Texture-Api-Key: ${key.key}`, ...headerLines, `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close'];
  return rawSend(sidecar.proxyPort, head.join('\r\n') + '\r\n\r\n' + body);
}

function commandsOn(device: string): number {
  return fw.effects.filter((e) => e.action === 'command' && e.target === device).length;
}

describe('1. hop-by-hop abuse: Connection may not name a header the policy reads or Keygate sets', () => {
  test("Rack: Connection: Content-Type would forward the JSON body judged as alice's as a form naming bob's device → 400", async () => {
    fw.quirks = { noTypeIsForm: true };
    const r = await post(COMMAND, SMUGGLING_BODY, { 'content-type': 'application/json', connection: 'keep-alive, Content-Type' });
    expect(r.status, r.text).toBe(400);
    expect(errorBody(r).error.code).toBe('INVALID_CONNECTION_HEADER');
    expect(commandsOn('dev-bob-1')).toBe(0);
    expect(fw.requests()).toHaveLength(0);
  });

  test.each([
    'content-length',
    'Content-Encoding',
    'transfer-encoding',
    'host',
    'texture-api-key',
    'x-keygate-reference-id',
    'X-Keygate-Key-Type',
    'x-forwarded-for',
    'forwarded',
    'x-real-ip',
    'x-request-id',
    'X_Forwarded_For',
    'content_type',
  ])('Connection naming %s → 400, nothing forwarded', async (name) => {
    const r = await send(sidecar.proxyPort, { path: '/v1/devices', headers: { ...keyHeader(keys.alice), connection: `keep-alive, ${name}` } });
    expect(r.status, r.text).toBe(400);
    expect(errorBody(r).error.code).toBe('INVALID_CONNECTION_HEADER');
    expect(fw.received).toHaveLength(0);
  });

  test('a true hop-by-hop header named in Connection is still dropped, and the request served', async () => {
    const r = await send(sidecar.proxyPort, { path: '/v1/devices', headers: { ...keyHeader(keys.alice), connection: 'keep-alive, X-Hop-Only', 'x-hop-only': '1', 'x-end-to-end': '2' } });
    expect(r.status, r.text).toBe(200);
    const got = fw.requests()[0]!;
    expect(got.headers['x-hop-only']).toBeUndefined();
    expect(got.headers['x-end-to-end']).toBe('2');
  });

  test.each([
    ['server key, streamed answer', 'server', '/v1/devices/dev-bob-1'],
    ['scoped key, checked answer', 'alice', '/v1/devices/dev-alice-1'],
    ['scoped key, checked list', 'alice', '/v1/devices'],
  ] as const)('%s: a header the backend names in its Connection is not relayed', async (_n, who, path) => {
    fw.respond = (rec) => {
      if (rec.headers['x-keygate-purpose'] === 'attribute-lookup') return undefined;
      const dev =
        path === '/v1/devices'
          ? { data: [{ id: 'dev-alice-1', referenceId: 'alice' }], page: 1, perPage: 50, totalItems: 1, totalPages: 1 }
          : { id: path.split('/')[3], referenceId: who === 'server' ? 'bob' : 'alice' };
      return { headers: { connection: 'keep-alive, X-Internal-Token', 'x-internal-token': 'BACKEND_HOP_SECRET', 'x-other': 'kept', 'content-language': 'en' }, body: JSON.stringify(dev) };
    };
    const r = await send(sidecar.proxyPort, { path, headers: keyHeader(keys[who]) });
    expect(r.status, r.text).toBe(200);
    expect(r.headers['x-internal-token']).toBeUndefined();
    // A server key's streamed answer keeps the backend's other headers; a checked one only those about the response.
    if (who === 'server') expect(r.headers['x-other']).toBe('kept');
    else expect(r.headers['content-language']).toBe('en');
  });
});

describe('2. repeated or ambiguous framing headers', () => {
  test("Werkzeug (last Content-Type wins): JSON then form → 400, no command on bob's device", async () => {
    fw.quirks = { repeatedHeader: 'last' };
    const r = await raw('POST', COMMAND, ['Content-Type: application/json', 'Content-Type: application/x-www-form-urlencoded'], SMUGGLING_BODY);
    expect(r.status, r.raw).toBe(400);
    expect(r.body).toContain('DUPLICATE_HEADER');
    expect(commandsOn('dev-bob-1')).toBe(0);
    expect(fw.requests()).toHaveLength(0);
  });

  test.each([
    ['Content-Encoding', ['Content-Type: application/json', 'Content-Encoding: identity', 'Content-Encoding: gzip']],
    ['Host', ['Host: other.test', 'Content-Type: application/json']],
    ['Content-Type in two spellings', ['Content-Type: application/json', 'content-type: application/json']],
  ])('%s given twice → 400, nothing forwarded', async (_n, lines) => {
    const r = await raw('POST', COMMAND, lines, '{"deviceId":"dev-alice-1"}');
    expect(r.status, r.raw).toBe(400);
    expect(r.body).toContain('DUPLICATE_HEADER');
    expect(fw.received).toHaveLength(0);
  });

  test.each(['application/x-www-form-urlencoded+json', 'application/vnd.urlencoded+json', 'application/multipart-form+json', 'application/form+json'])(
    'formidable (parser picked by substring): Content-Type %s is not JSON → 415, no command',
    async (type) => {
      fw.quirks = { formBySubstring: true };
      const r = await post(COMMAND, SMUGGLING_BODY, { 'content-type': type });
      expect(r.status, r.text).toBe(415);
      expect(errorBody(r).error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
      expect(commandsOn('dev-bob-1')).toBe(0);
      expect(fw.requests()).toHaveLength(0);
    },
  );

  test.each(['application/json', 'Application/JSON; charset="UTF-8"', 'application/vnd.texture+json', 'application/merge-patch+json;charset=utf-8'])(
    "%s is JSON: the command runs on alice's device",
    async (type) => {
      const r = await post(COMMAND, '{"deviceId":"dev-alice-1"}', { 'content-type': type });
      expect(r.status, r.text).toBe(201);
      expect(commandsOn('dev-alice-1')).toBe(1);
    },
  );
});

describe('3. JSON keys other parsers merge', () => {
  test.each(['DeviceId', 'DEVICEID', 'deviceid', 'device_id', 'ｄｅｖｉｃｅＩｄ'])(
    "Go encoding/json (case-insensitive, last wins): deviceId beside %s → 400, no command on bob's device",
    async (other) => {
      fw.quirks = { caseInsensitiveKeys: true };
      const r = await post(COMMAND, `{"deviceId":"dev-alice-1","${other}":"dev-bob-1"}`, { 'content-type': 'application/json' });
      expect(r.status, r.text).toBe(400);
      expect(errorBody(r).error.code).toBe('DUPLICATE_JSON_KEY');
      expect((errorBody(r).error as { field?: string }).field).toBe(JSON.parse(`"${other}"`));
      expect(commandsOn('dev-bob-1')).toBe(0);
      expect(fw.requests()).toHaveLength(0);
    },
  );

  test.each(['deviceId\\u0000', 'deviceId\\u0000x', 'device\\u200bId'])('a C parser (a key ends at NUL): deviceId beside %s → 400', async (other) => {
    fw.quirks = { keysStopAtNul: true };
    const r = await post(COMMAND, `{"deviceId":"dev-alice-1","${other}":"dev-bob-1"}`, { 'content-type': 'application/json' });
    expect(r.status, r.text).toBe(400);
    expect(errorBody(r).error.code).toBe('INVALID_JSON_KEY');
    expect(commandsOn('dev-bob-1')).toBe(0);
  });

  test('a body after a UTF-8 byte order mark (JSON.parse refuses it, a lenient parser skips it) → 400, nothing forwarded', async () => {
    const r = await post(COMMAND, '\ufeff{"deviceId":"dev-alice-1"}', { 'content-type': 'application/json' });
    expect(r.status, r.text).toBe(400);
    expect(errorBody(r).error.code).toBe('INVALID_JSON');
    expect(fw.requests()).toHaveLength(0);
  });

  test.each(['_method', '_METHOD', 'X-HTTP-Method-Override', 'x_method_override'])('Laravel (_method in the JSON input overrides POST): a body field %s → 400, nothing cancelled', async (field) => {
    fw.quirks = { laravel: true };
    const r = await post(COMMAND, `{"deviceId":"dev-alice-1","${field}":"DELETE"}`, { 'content-type': 'application/json' });
    expect(r.status, r.text).toBe(400);
    expect(errorBody(r).error.code).toBe('INVALID_JSON_KEY');
    expect(fw.effects).toEqual([]);
  });
});

describe('Laravel and Symfony read _method from the query of a POST, as PHP registers it', () => {
  // PHP turns a `.` or a space before the first `[` into `_` and skips leading spaces: `.method` is `_method` there.
  test.each(['_method=DELETE', '.method=DELETE', '%2Emethod=DELETE', '+.method=PUT', '%20.method=PATCH', 'x=1&.method=DELETE', '.METHOD=DELETE', '%20%2Emethod=DELETE'])(
    'POST a command ?%s: the backend gets a POST whose query names no override',
    async (query) => {
      fw.quirks = { laravel: true };
      const r = await post(`${COMMAND}?${query}`, '{"deviceId":"dev-alice-1"}', { 'content-type': 'application/json' });
      expect([201, 202], r.text).toContain(r.status);
      const got = fw.requests();
      expect(got).toHaveLength(1);
      expect(got[0]!.method).toBe('POST');
      const names = [...new URL(got[0]!.url, 'http://x').searchParams.keys()].map((k) => k.replace(/^ +/, '').replace(/[ .]/g, '_').toLowerCase());
      expect(names).not.toContain('_method');
      expect(
        fw.effects.every((e) => !/delete|cancel|update/i.test(JSON.stringify(e))),
        JSON.stringify(fw.effects),
      ).toBe(true);
    },
  );
});

describe('4. numbers JavaScript rounds', () => {
  test("Go int64: deviceId 9007199254740993 (bob's) is not proven as 9007199254740992 (alice's) → 400, no command", async () => {
    fw.quirks = { exactNumbers: true };
    const r = await post(COMMAND, `{"deviceId":${BIG_BOB}}`, { 'content-type': 'application/json' });
    expect(r.status, r.text).toBe(400);
    expect(errorBody(r).error.code).toBe('MISSING_RESOURCE_ID');
    expect(commandsOn(BIG_BOB)).toBe(0);
    expect(fw.requests()).toHaveLength(0);
  });

  test.each(['9007199254740992.0', '9.007199254740992e15', '-0'])('a non-canonical number %s is not an id → 400', async (n) => {
    const r = await post(COMMAND, `{"deviceId":${n}}`, { 'content-type': 'application/json' });
    expect(r.status, r.text).toBe(400);
    expect(fw.requests()).toHaveLength(0);
  });
});

describe('6. ids that override the proven id', () => {
  test.each(['id=dev-bob-1', 'ID=dev-bob-1', '%69d=dev-bob-1', 'id[]=dev-bob-1', '_id=dev-bob-1', 'page=1;id=dev-bob-1', 'device[id]=dev-bob-1', 'device.id=dev-bob-1', 'filter[id]=dev-bob-1'])(
    "Laravel ($request->id prefers input): GET /v1/devices/{own}/history?%s → 400, bob's history never read",
    async (query) => {
      fw.quirks = { laravel: true };
      const r = await send(sidecar.proxyPort, { path: `/v1/devices/dev-alice-1/history?${query}`, headers: keyHeader(keys.alice) });
      expect(r.status, r.text).toBe(400);
      expect(errorBody(r).error.code).toBe('RESOURCE_ID_OVERRIDE');
      expect(r.text).not.toContain('BOB_SECRET');
      expect(fw.effects.filter((e) => e.target === 'dev-bob-1')).toEqual([]);
    },
  );

  test.each([
    ['deviceId=dev-bob-1', 'deviceId'],
    ['device_id=dev-bob-1', 'device_id'],
    ['DeviceID=dev-bob-1', 'DeviceID'],
    ['limit=5&deviceId[]=dev-bob-1', 'deviceId'],
    ['devic%65Id=dev-bob-1', 'deviceId'],
  ])("Laravel route /devices/{deviceId}/history: GET …/history?%s (the backend's own name for the id) → 400, bob's history never read", async (query, param) => {
    fw.quirks = { laravel: true, laravelRouteParam: param };
    for (const path of [`/v1/devices/dev-alice-1/history?${query}`, `/v1/devices/dev-alice-1?${query}`]) {
      const r = await send(sidecar.proxyPort, { path, headers: keyHeader(keys.alice) });
      expect(r.status, `${path} ${r.text}`).toBe(400);
      expect(errorBody(r).error.code).toBe('RESOURCE_ID_OVERRIDE');
      expect(r.text).not.toContain('BOB_SECRET');
    }
    expect(fw.effects.filter((e) => e.target === 'dev-bob-1')).toEqual([]);
    expect(fw.requests()).toHaveLength(0);
  });

  test.each(['device+id=dev-bob-1', 'device%20id=dev-bob-1', 'device.id=dev-bob-1', 'device[id=dev-bob-1', '+device_id=dev-bob-1'])(
    "PHP registers a space, a dot and an unmatched [ as _: GET /v1/devices/{own}/history?%s reaches Laravel as device_id → 400, bob's history never read",
    async (query) => {
      fw.quirks = { laravel: true, laravelRouteParam: 'device_id' };
      const r = await send(sidecar.proxyPort, { path: `/v1/devices/dev-alice-1/history?${query}`, headers: keyHeader(keys.alice) });
      expect(r.status, r.text).toBe(400);
      expect(errorBody(r).error.code).toBe('RESOURCE_ID_OVERRIDE');
      expect(r.text).not.toContain('BOB_SECRET');
      expect(fw.effects.filter((e) => e.target === 'dev-bob-1')).toEqual([]);
      expect(fw.requests()).toHaveLength(0);
    },
  );

  test.each(['device=dev-bob-1', 'Device=dev-bob-1', 'device[]=dev-bob-1', 'devices_id=dev-bob-1', 'device_uuid=dev-bob-1', 'deviceIds=dev-bob-1', 'ids=dev-bob-1', 'pk=dev-bob-1', 'GUID=dev-bob-1'])(
    "Laravel's resource route names the parameter {device}: GET /v1/devices/{own}/history?%s → 400, bob's history never read",
    async (query) => {
      fw.quirks = { laravel: true, laravelRouteParam: 'device' };
      const r = await send(sidecar.proxyPort, { path: `/v1/devices/dev-alice-1/history?${query}`, headers: keyHeader(keys.alice) });
      expect(r.status, r.text).toBe(400);
      expect(errorBody(r).error.code).toBe('RESOURCE_ID_OVERRIDE');
      expect(fw.requests()).toHaveLength(0);
    },
  );

  test.each(['reference+id=bob', 'reference.id=bob', 'reference%5Bid=bob', 'reference%20id=bob'])(
    'PHP reads ?%s as reference_id: it never reaches the backend beside the injected filter',
    async (query) => {
      fw.quirks = { laravel: true };
      const r = await send(sidecar.proxyPort, { path: `/v1/devices?${query}`, headers: keyHeader(keys.alice) });
      expect(r.status, r.text).toBe(200);
      const got = fw.requests().at(-1)!;
      expect(got.url).toBe('/v1/devices?referenceId=alice');
    },
  );

  test.each([
    ['Rails wrap_parameters', '{"deviceId":"dev-alice-1","command":{"deviceId":"dev-bob-1"}}'],
    ['JSON:API attributes', '{"deviceId":"dev-alice-1","data":{"attributes":{"device_id":"dev-bob-1"}}}'],
    ['a top-level id beside it', '{"deviceId":"dev-alice-1","id":"dev-bob-1"}'],
    ['a JSON:API relationship', '{"deviceId":"dev-alice-1","data":{"type":"commands","relationships":{"device":{"data":{"type":"devices","id":"dev-bob-1"}}}}}'],
    ["Django REST Framework's foreign key", '{"deviceId":"dev-alice-1","device":"dev-bob-1"}'],
    ['the key with a trailing space', '{"deviceId":"dev-alice-1","deviceId ":"dev-bob-1"}'],
    ['a dotted key', '{"deviceId":"dev-alice-1","device.id":"dev-bob-1"}'],
    ['a list of device ids', '{"deviceId":"dev-alice-1","deviceIds":["dev-bob-1"]}'],
  ])("a command body naming the device again (%s) → 400, no command on bob's device", async (_name, body) => {
    fw.quirks = { railsWrap: true, laravel: true };
    const r = await post(COMMAND, body, { 'content-type': 'application/json' });
    expect(r.status, r.text).toBe(400);
    expect(errorBody(r).error.code).toBe('RESOURCE_ID_OVERRIDE');
    expect(commandsOn('dev-bob-1')).toBe(0);
    expect(fw.requests()).toHaveLength(0);
  });

  test("a command's input may hold ids of its own: forwarded as sent", async () => {
    fw.quirks = { railsWrap: true };
    const body = '{"deviceId":"dev-alice-1","input":{"scheduleId":"s1","steps":[{"id":"st1"}]}}';
    const r = await post(COMMAND, body, { 'content-type': 'application/json' });
    expect(r.status, r.text).toBe(201);
    expect(commandsOn('dev-alice-1')).toBe(1);
    expect(fw.requests().at(-1)!.body.toString()).toBe(body);
  });

  test('the same refusal whether or not the named device exists (no existence oracle)', async () => {
    fw.quirks = { laravel: true, laravelRouteParam: 'deviceId' };
    const bob = await send(sidecar.proxyPort, { path: '/v1/devices/dev-alice-1?deviceId=dev-bob-1', headers: keyHeader(keys.alice) });
    const none = await send(sidecar.proxyPort, { path: '/v1/devices/dev-alice-1?deviceId=dev-nobody', headers: keyHeader(keys.alice) });
    expect([bob.status, errorBody(bob).error.code]).toEqual([none.status, errorBody(none).error.code]);
    expect(fw.requests()).toHaveLength(0);
  });

  // Bodies on GET and DELETE carry an explicit Content-Length: Node's client sends them unframed otherwise.
  test('Laravel: a GET with a JSON body {"id": bob\'s} → 400, nothing forwarded', async () => {
    fw.quirks = { laravel: true };
    const body = '{"id":"dev-bob-1"}';
    const r = await send(sidecar.proxyPort, {
      path: '/v1/devices/dev-alice-1/history',
      body,
      headers: { ...keyHeader(keys.alice), 'content-type': 'application/json', 'content-length': String(body.length) },
    });
    expect(r.status, r.text).toBe(400);
    expect(errorBody(r).error.code).toBe('BODY_NOT_ALLOWED');
    expect(r.text).not.toContain('BOB_SECRET');
    expect(fw.requests()).toHaveLength(0);
  });

  test('without the override the own history is read', async () => {
    fw.quirks = { laravel: true };
    const r = await send(sidecar.proxyPort, { path: '/v1/devices/dev-alice-1/history?page=1', headers: keyHeader(keys.alice) });
    expect(r.status, r.text).toBe(200);
    expect(r.text).toContain('ALICE_SECRET_1');
  });
});

describe('7. filter names other frameworks fold', () => {
  test.each([
    ['Java equalsIgnoreCase, dotless ı', 'java', 'referenc%C4%B1d=bob'],
    ['Java equalsIgnoreCase, dotted İ', 'java', 'REFERENCE%C4%B0D=bob'],
    ['NFKC, fullwidth letters', 'nfkc', '%EF%BD%92%EF%BD%85%EF%BD%86%EF%BD%85%EF%BD%92%EF%BD%85%EF%BD%8E%EF%BD%83%EF%BD%85%EF%BC%A9%EF%BD%84=bob'],
  ] as const)('%s: a second referenceId beside the injected one → 400, the backend never filters by bob', async (_n, mode, query) => {
    fw.quirks = { queryNames: mode };
    const r = await send(sidecar.proxyPort, { path: `/v1/devices?${query}`, headers: keyHeader(keys.alice) });
    expect(r.status, r.text).toBe(400);
    expect(errorBody(r).error.code).toBe('INVALID_QUERY');
    expect(fw.effects.filter((e) => e.action === 'list devices' && e.target !== 'alice')).toEqual([]);
    expect(fw.received).toHaveLength(0);
  });

  test('snake_case and dashed spellings are removed before the filter is set', async () => {
    const r = await send(sidecar.proxyPort, { path: '/v1/devices?reference_id=bob&Reference-Id=bob&perPage=5', headers: keyHeader(keys.alice) });
    expect(r.status, r.text).toBe(200);
    expect(fw.requests()[0]!.url).toBe('/v1/devices?referenceId=alice&perPage=5');
  });

  test('a GET body carrying its own referenceId → 400, nothing forwarded', async () => {
    const body = '{"referenceId":"bob"}';
    const r = await send(sidecar.proxyPort, { path: '/v1/devices', body, headers: { ...keyHeader(keys.alice), 'content-type': 'application/json', 'content-length': String(body.length) } });
    expect(r.status, r.text).toBe(400);
    expect(errorBody(r).error.code).toBe('BODY_NOT_ALLOWED');
    expect(fw.received).toHaveLength(0);
  });

  test("a referenceId holding the filter's separator is refused at creation", async () => {
    const r = await execFileP(process.execPath, [BIN, 'keys', 'create', '--type', 'scoped', '--reference-id', 'ref-carol,ref-bob', '--store', keys.store, '--json'], { cwd: ROOT }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--reference-id.*comma/);
  });

  test('a stored referenceId holding the separator (a row written around the CLI) → 401, nothing forwarded', async () => {
    const store = tempStore();
    const carol = await createKey(store, 'scoped', 'ref-carol');
    const db = new DatabaseSync(store.slice('sqlite:'.length));
    db.prepare('UPDATE keys SET reference_id = ? WHERE id = ?').run('ref-carol,ref-bob', carol.id);
    db.close();
    const other = await startSidecar({ upstream: fw.url, store });
    try {
      const r = await send(other.proxyPort, { path: '/v1/devices', headers: keyHeader(carol) });
      expect(r.status, r.text).toBe(401);
      expect(fw.received).toHaveLength(0);
    } finally {
      await other.stop();
    }
  });
});

describe('7b. headers named like the filter or the proven id', () => {
  const NAMES = ['ReferenceId', 'X-Reference-Id', 'reference-id', 'X-Device-Id', 'DeviceId', 'X_Device_Id'];
  const sent = (rec: { rawHeaders: string[] }): string[] => rec.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());

  test.each([
    ['a filtered list', 'GET', '/v1/devices', undefined],
    ["a device's history", 'GET', '/v1/devices/dev-alice-1/history', undefined],
    ['a command', 'POST', COMMAND, '{"deviceId":"dev-alice-1","input":{}}'],
  ])("%s: a scoped key's headers named like referenceId or deviceId never reach the backend", async (_name, method, path, body) => {
    const headers: Record<string, string> = { ...keyHeader(keys.alice), 'x-other': 'kept' };
    for (const n of NAMES) headers[n] = n.toLowerCase().includes('device') ? 'dev-bob-1' : 'bob';
    if (body !== undefined) headers['content-type'] = 'application/json';
    const r = await send(sidecar.proxyPort, { method, path, headers, ...(body === undefined ? {} : { body }) });
    expect(r.status, r.text).toBeLessThan(300);
    const got = fw.requests().at(-1)!;
    const names = sent(got);
    expect(names).toContain('x-other');
    for (const n of NAMES) expect(names, n).not.toContain(n.toLowerCase());
    expect(JSON.stringify(got.rawHeaders)).not.toContain('bob');
  });

  test('a server key (no conditions) keeps them', async () => {
    const r = await send(sidecar.proxyPort, { path: '/v1/devices', headers: { ...keyHeader(keys.server), 'X-Reference-Id': 'bob' } });
    expect(r.status, r.text).toBe(200);
    expect(sent(fw.requests().at(-1)!)).toContain('x-reference-id');
  });
});

describe('6. the EVRYTHNG example is closed the same way', () => {
  let evrythng: Sidecar;
  let operator: KeyInfo;
  beforeAll(async () => {
    const store = tempStore();
    operator = await cliKey(store, ['--type', 'access-token', '--role', 'factory-operator', '--condition', 'factoryId:f1']);
    evrythng = await startSidecar({ upstream: fw.url, store, policies: join(POLICIES, 'examples') });
  });
  afterAll(async () => {
    await evrythng?.stop();
  });

  const call = (method: string, path: string, body?: string) =>
    send(evrythng.proxyPort, {
      method,
      path,
      ...(body === undefined ? {} : { body }),
      headers: { ...keyHeader(operator), ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }) },
    });

  test.each([
    ["PUT with ?id= of another factory's thng", 'PUT', '/thngs/th_f1?id=th_f3', '{"name":"x"}', 'RESOURCE_ID_OVERRIDE'],
    ["PUT with a body id of another factory's thng", 'PUT', '/thngs/th_f1', '{"name":"x","id":"th_f3"}', 'RESOURCE_ID_OVERRIDE'],
    ['PUT with a body ID in another case', 'PUT', '/places/pl_f1', '{"ID":"pl_f3"}', 'RESOURCE_ID_OVERRIDE'],
    ['DELETE with a body id', 'DELETE', '/thngs/th_f1', '{"id":"th_f3"}', 'BODY_NOT_ALLOWED'],
    ['DELETE with ?id=', 'DELETE', '/thngs/th_f1?id=th_f3', undefined, 'RESOURCE_ID_OVERRIDE'],
    ['PUT with a form body', 'PUT', '/thngs/th_f1', undefined, 'UNSUPPORTED_MEDIA_TYPE'],
  ] as const)('Laravel: %s → refused, nothing of f3 changed', async (_n, method, path, body, code) => {
    fw.quirks = { laravel: true };
    const r =
      body === undefined && code === 'UNSUPPORTED_MEDIA_TYPE'
        ? await send(evrythng.proxyPort, { method, path, body: 'id=th_f3', headers: { ...keyHeader(operator), 'content-type': 'application/x-www-form-urlencoded' } })
        : await call(method, path, body);
    expect(r.status, r.text).toBe(code === 'UNSUPPORTED_MEDIA_TYPE' ? 415 : 400);
    expect(errorBody(r).error.code).toBe(code);
    expect(fw.effects).toEqual([]);
  });

  test("the operator still updates and deletes its own factory's thng", async () => {
    fw.quirks = { laravel: true };
    expect((await call('PUT', '/thngs/th_f1', '{"name":"renamed"}')).status).toBe(200);
    expect((await call('DELETE', '/thngs/th_f1')).status).toBe(200);
    expect(fw.effects).toEqual([
      { action: 'update thngs', target: 'th_f1' },
      { action: 'delete thngs', target: 'th_f1' },
    ]);
  });
});
