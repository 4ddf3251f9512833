// The headers of the answers Keygate forwards, through real HTTP from a real backend:
// no shared cache may store an answer to a key (Cache-Control, Vary, CDN fields); on a
// route with conditions no header may name another user's object or count anyone's items,
// whatever the status; a checked answer is read in one charset only.
import { describe, expect, test } from 'vitest';
import { type Backend, DEVICES, errorBody, type KeyInfo, keyHeader, type Received, type Res, send, useStack } from './harness.ts';

const stack = useStack();

type Answer = { status: number; headers?: Record<string, string | string[]>; body?: string };

/** The backend answers `answer` to the forwarded request `match` accepts; Keygate's owner lookups get the usual answers. */
function answer(backend: Backend, match: (rec: Received) => boolean, a: Answer): void {
  backend.responder = (rec) => (rec.headers['x-keygate-purpose'] === undefined && match(rec) ? a : undefined);
}

const get = (path: string, key: KeyInfo, headers: Record<string, string> = {}): Promise<Res> => send(stack.sidecar.proxyPort, { path, headers: { ...keyHeader(key), ...headers } });

const ALICE_1 = DEVICES.find((d) => d.id === 'dev-alice-1')!;
const aliceList = JSON.stringify({ data: DEVICES.filter((d) => d.referenceId === 'alice'), page: 1, perPage: 50, totalItems: 2, totalPages: 1 });
const isList = (rec: Received) => rec.method === 'GET' && rec.url.startsWith('/v1/devices?');
const isAlice1 = (rec: Received) => rec.method === 'GET' && rec.url === '/v1/devices/dev-alice-1';
const isSites = (rec: Received) => rec.method === 'GET' && rec.url === '/v1/sites';

/** Headers a backend may add that name other objects or count items. */
const ORACLE_HEADERS = {
  etag: '"all-4"',
  'last-modified': 'Wed, 01 Jan 2025 00:00:00 GMT',
  link: '</v1/devices/dev-bob-1>; rel="related", </v1/devices?page=2>; rel="next"',
  location: '/v1/devices/dev-bob-1',
  'content-location': '/v1/devices?referenceId=bob',
  'x-total-count': '4',
};
const ORACLE_NAMES = Object.keys(ORACLE_HEADERS);

describe('1. no shared cache stores an answer to a key', () => {
  const CDN_FIELDS = {
    'surrogate-control': 'max-age=3600',
    'cdn-cache-control': 'max-age=600',
    'cloudflare-cdn-cache-control': 'max-age=600',
    'surrogate-key': 'devices alice',
    'x-accel-expires': '600',
  };

  test.each([
    ['scoped key, checked list', 'alice', '/v1/devices', isList, aliceList],
    ['scoped key, checked single device', 'alice', '/v1/devices/dev-alice-1', isAlice1, JSON.stringify(ALICE_1)],
    ['server key, streamed answer', 'server', '/v1/sites', isSites, '{"data":[]}'],
  ] as const)('%s: public and s-maxage become private, Vary names the key, CDN fields are dropped', async (_n, who, path, match, body) => {
    answer(stack.backend, match, { status: 200, headers: { 'cache-control': 'public, max-age=60, s-maxage=300, proxy-revalidate', vary: 'Origin', ...CDN_FIELDS }, body });
    const r = await get(path, stack.keys[who]);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual(JSON.parse(body));
    expect(r.headers['cache-control']).toBe('private, max-age=60');
    expect(r.headers.vary).toBe('Origin, Texture-Api-Key');
    for (const name of Object.keys(CDN_FIELDS)) expect(r.headers[name], name).toBeUndefined();
  });

  test.each([
    ['scoped key', 'alice', '/v1/devices/dev-alice-1', isAlice1, JSON.stringify(ALICE_1)],
    ['server key', 'server', '/v1/sites', isSites, '{"data":[]}'],
  ] as const)('%s: an answer without Cache-Control or Vary gets `private` and `Vary: Texture-Api-Key`', async (_n, who, path, match, body) => {
    answer(stack.backend, match, { status: 200, body });
    const r = await get(path, stack.keys[who]);
    expect(r.status).toBe(200);
    expect(r.headers['cache-control']).toBe('private');
    expect(r.headers.vary).toBe('Texture-Api-Key');
  });

  test.each([
    ['no-store', 'no-store'],
    ['no-cache', 'private, no-cache'],
    ['max-age=0, must-revalidate', 'private, max-age=0, must-revalidate'],
    ['private, max-age=30', 'private, max-age=30'],
    ['PUBLIC, Max-Age=30, S-MAXAGE=99', 'private, Max-Age=30'],
    ['private="Set-Cookie", max-age=30', 'private, max-age=30'],
    ['no-cache="Set-Cookie, Link", public', 'private, no-cache="Set-Cookie, Link"'],
    ['no-store, must-understand', 'private, no-store, must-understand'],
  ])('Cache-Control %j reaches the client as %j', async (sent, received) => {
    answer(stack.backend, isSites, { status: 200, headers: { 'cache-control': sent }, body: '{}' });
    const r = await get('/v1/sites', stack.keys.server);
    expect(r.headers['cache-control']).toBe(received);
  });

  test('Cache-Control sent twice is one private value', async () => {
    answer(stack.backend, isSites, { status: 200, headers: { 'cache-control': ['public, max-age=60', 's-maxage=600'] }, body: '{}' });
    const r = await get('/v1/sites', stack.keys.server);
    expect(r.headers['cache-control']).toBe('private, max-age=60');
  });

  test.each([
    ['*', '*'],
    ['Origin, Accept-Encoding', 'Origin, Accept-Encoding, Texture-Api-Key'],
    ['origin, texture-api-key', 'origin, texture-api-key'],
  ])('Vary %j reaches the client as %j', async (sent, received) => {
    answer(stack.backend, isSites, { status: 200, headers: { vary: sent }, body: '{}' });
    const r = await get('/v1/sites', stack.keys.server);
    expect(r.headers.vary).toBe(received);
  });

  test('a 304 and an error relayed for a server key carry `private` too', async () => {
    answer(stack.backend, isSites, { status: 304, headers: { 'cache-control': 'public, max-age=60' } });
    const notModified = await get('/v1/sites', stack.keys.server, { 'if-none-match': '"x"' });
    expect(notModified.status).toBe(304);
    expect(notModified.headers['cache-control']).toBe('private, max-age=60');
    answer(stack.backend, isSites, { status: 404, headers: { 'cache-control': 'public, max-age=60' }, body: '{"error":"none"}' });
    const missing = await get('/v1/sites', stack.keys.server);
    expect(missing.status).toBe(404);
    expect(missing.headers['cache-control']).toBe('private, max-age=60');
    expect(missing.headers.vary).toBe('Texture-Api-Key');
  });
});

describe('2. on a route with conditions no header names another object or counts items, on any status', () => {
  test.each([304, 204])('a %i on the checked list keeps its status, not the headers about the backend list', async (status) => {
    answer(stack.backend, isList, { status, headers: { ...ORACLE_HEADERS, 'cache-control': 'max-age=10' } });
    const r = await get('/v1/devices', stack.keys.alice);
    expect(r.status).toBe(status);
    expect(r.text).toBe('');
    for (const name of ORACLE_NAMES) expect(r.headers[name], name).toBeUndefined();
    // A 304's Content-Length would be the length of the backend's (unfiltered) list.
    expect(r.headers['content-length']).toBeUndefined();
    expect(r.headers['cache-control']).toBe('private, max-age=10');
  });

  test('a single device (200) goes out without the headers naming other objects; its body and length intact', async () => {
    const body = JSON.stringify(ALICE_1);
    answer(stack.backend, isAlice1, { status: 200, headers: { ...ORACLE_HEADERS, 'content-language': 'en' }, body });
    const r = await get('/v1/devices/dev-alice-1', stack.keys.alice);
    expect(r.status).toBe(200);
    expect(r.text).toBe(body);
    expect(r.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(r.headers['content-language']).toBe('en');
    for (const name of ORACLE_NAMES) expect(r.headers[name], name).toBeUndefined();
  });

  test('a single device answered 304: no ETag, no Link, no length', async () => {
    answer(stack.backend, isAlice1, { status: 304, headers: ORACLE_HEADERS });
    const r = await get('/v1/devices/dev-alice-1', stack.keys.alice);
    expect(r.status).toBe(304);
    for (const name of ORACLE_NAMES) expect(r.headers[name], name).toBeUndefined();
    expect(r.headers['content-length']).toBeUndefined();
  });

  test('a command read (proven by its deviceId) goes out without them', async () => {
    const body = JSON.stringify({ id: 'cmd-alice-1', deviceId: 'dev-alice-1', status: 'succeeded' });
    answer(stack.backend, (rec) => rec.method === 'GET' && rec.url === '/v1/commands/cmd-alice-1', { status: 200, headers: ORACLE_HEADERS, body });
    const r = await get('/v1/commands/cmd-alice-1', stack.keys.alice);
    expect(r.status).toBe(200);
    expect(r.text).toBe(body);
    for (const name of ORACLE_NAMES) expect(r.headers[name], name).toBeUndefined();
  });

  test('a command sent (proven by the body deviceId) goes out without them', async () => {
    const body = JSON.stringify({ id: 'cmd-new', deviceId: 'dev-alice-1', status: 'pending' });
    answer(stack.backend, (rec) => rec.method === 'POST' && rec.url === '/v1/commands/thermostat/set', { status: 201, headers: ORACLE_HEADERS, body });
    const r = await send(stack.sidecar.proxyPort, {
      method: 'POST',
      path: '/v1/commands/thermostat/set',
      headers: { ...keyHeader(stack.keys.alice), 'content-type': 'application/json' },
      body: '{"deviceId":"dev-alice-1"}',
    });
    expect(r.status).toBe(201);
    expect(r.text).toBe(body);
    for (const name of ORACLE_NAMES) expect(r.headers[name], name).toBeUndefined();
  });

  test('a server key (no conditions) still gets every one of them', async () => {
    answer(stack.backend, isAlice1, { status: 200, headers: ORACLE_HEADERS, body: JSON.stringify(ALICE_1) });
    const r = await get('/v1/devices/dev-alice-1', stack.keys.server);
    expect(r.status).toBe(200);
    for (const [name, value] of Object.entries(ORACLE_HEADERS)) expect(r.headers[name], name).toBe(value);
  });
});

describe('3. a checked answer is read in one charset: UTF-8', () => {
  const single = JSON.stringify(ALICE_1);

  test.each([
    'application/json; charset=utf-16',
    'application/json; charset="UTF-16"',
    'application/json;Charset=ISO-8859-1',
    'application/json; charset=utf-8; charset=utf-16',
    'application/vnd.texture+json; charset=windows-1252',
    "application/json; charset*=UTF-16''x",
    "application/json; charset=utf-8; charset*=utf-16''",
  ])('a single device under %j is 502, not released under that label', async (type) => {
    answer(stack.backend, isAlice1, { status: 200, headers: { 'content-type': type }, body: single });
    const r = await get('/v1/devices/dev-alice-1', stack.keys.alice);
    expect(r.status).toBe(502);
    expect(errorBody(r).error.code).toBe('UPSTREAM_BAD_RESPONSE');
    expect(r.text).not.toContain('ALICE_SECRET');
  });

  test('a list under charset=utf-16 is 502', async () => {
    answer(stack.backend, isList, { status: 200, headers: { 'content-type': 'application/json; charset=utf-16' }, body: aliceList });
    const r = await get('/v1/devices', stack.keys.alice);
    expect(r.status).toBe(502);
    expect(errorBody(r).error.code).toBe('UPSTREAM_BAD_RESPONSE');
  });

  test.each(['application/json; charset=utf-8', 'application/json; charset="UTF-8"', 'application/json'])('%j is released', async (type) => {
    answer(stack.backend, isAlice1, { status: 200, headers: { 'content-type': type }, body: single });
    const r = await get('/v1/devices/dev-alice-1', stack.keys.alice);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe(type);
    expect(r.text).toBe(single);
  });

  test('a server key (nothing checked) gets the backend answer under its own label', async () => {
    answer(stack.backend, isAlice1, { status: 200, headers: { 'content-type': 'application/json; charset=utf-16' }, body: single });
    const r = await get('/v1/devices/dev-alice-1', stack.keys.server);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json; charset=utf-16');
  });
});
