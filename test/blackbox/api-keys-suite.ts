/**
 * The key management API from outside, on one store (the two test files run it on SQLite
 * and on PostgreSQL): real sidecar processes, real HTTP, keys made with the real CLI, a
 * backend that records what it receives (it must receive nothing of this API).
 * Imports nothing from src/.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Backend, BIN, errorBody, keyHeader, type Res, ROOT, type Sidecar, send, sleep, startBackend, startSidecar } from './harness.ts';

const execFileP = promisify(execFile);

export async function cli(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return execFileP(process.execPath, [BIN, ...args], { cwd: ROOT });
}

export async function cliKey(store: string, args: string[]): Promise<{ id: string; key: string }> {
  const { stdout } = await cli(['keys', 'create', ...args, '--json', '--store', store]);
  return JSON.parse(stdout) as { id: string; key: string };
}

const JSON_TYPE = { 'content-type': 'application/json' };

export type Api = (method: string, path: string, key: string, body?: unknown, headers?: Record<string, string>) => Promise<Res>;

export function apiOf(sidecar: () => Sidecar): Api {
  return (method, path, key, body, headers) => {
    const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    // Node's client frames a GET or DELETE body only when told its length.
    const framing = text === undefined ? {} : { ...JSON_TYPE, 'content-length': String(Buffer.byteLength(text)) };
    return send(sidecar().proxyPort, { method, path, headers: { ...keyHeader(key), ...framing, ...headers }, body: text });
  };
}

/** The fields of a key object: exactly these, never a secret or a hash. */
const KEY_OBJECT_FIELDS = [
  'allowReferenceId',
  'allowedOrigins',
  'allowedRedirects',
  'conditions',
  'createdAt',
  'createdBy',
  'description',
  'expiresAt',
  'id',
  'keyPrefix',
  'lastUsedAt',
  'name',
  'referenceId',
  'revoked',
  'revokedAt',
  'roles',
  'type',
  'updatedAt',
];

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

async function metrics(sidecar: Sidecar): Promise<string> {
  return (await send(sidecar.opsPort, { path: '/metrics' })).text;
}

/** Every place a secret could leak to after its creation answer: the API's other answers, the logs, the metrics. */
async function leaks(api: Api, sidecar: Sidecar, admin: string, id: string, secret: string): Promise<string[]> {
  const texts = [
    (await api('GET', '/v1/api-keys?perPage=100', admin)).text,
    (await api('GET', `/v1/api-keys/${id}`, admin)).text,
    (await api('GET', `/v1/api-keys/${id}/events`, admin)).text,
    sidecar.stdout(),
    sidecar.stderr(),
    await metrics(sidecar),
  ];
  const body = secret.slice(secret.indexOf('_') + 1);
  return texts.filter((t) => t.includes(body.slice(4)) || t.includes(sha256(secret)));
}

export function apiKeysSuite(kind: string, newStore: () => Promise<string>): void {
  describe(`key management API on ${kind}`, () => {
    let backend: Backend;
    let sidecar: Sidecar;
    let store: string;
    let admin: { id: string; key: string };
    const api = apiOf(() => sidecar);

    beforeAll(async () => {
      backend = await startBackend();
      store = await newStore();
      admin = await cliKey(store, ['--type', 'server', '--name', 'admin']);
      sidecar = await startSidecar({ upstream: backend.url, store });
    });
    afterAll(async () => {
      await sidecar?.stop();
      await backend?.close();
    });

    test('POST creates a key: 201, the secret in `key` this once, a Location, and the key works at once', async () => {
      const r = await api('POST', '/v1/api-keys', admin.key, { type: 'server', name: 'billing', description: 'nightly jobs' });
      expect(r.status, r.text).toBe(201);
      const made = r.json as Record<string, unknown> & { id: string; key: string };
      expect(Object.keys(made).sort()).toEqual([...KEY_OBJECT_FIELDS, 'key'].sort());
      expect(made).toMatchObject({ type: 'server', name: 'billing', description: 'nightly jobs', revoked: false, createdBy: admin.id, keyPrefix: made.key.slice(0, 8), lastUsedAt: null });
      expect(r.headers.location).toBe(`/v1/api-keys/${made.id}`);
      expect(r.headers['cache-control']).toBe('no-store');
      backend.reset();
      expect((await send(sidecar.proxyPort, { path: '/v1/sites', headers: keyHeader(made.key) })).status).toBe(200);
      expect(backend.received.map((x) => [x.url, x.headers['x-keygate-key-id']])).toEqual([['/v1/sites', made.id]]);
    });

    test('the secret is shown once and never again: not in list, get, events, logs, metrics; nor its hash', async () => {
      const r = await api('POST', '/v1/api-keys', admin.key, { type: 'scoped', referenceId: 'alice', name: 'alice phone' });
      const made = r.json as { id: string; key: string };
      expect(made.key.startsWith('scoped_')).toBe(true);
      await send(sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(made.key) });
      await api('POST', `/v1/api-keys/${made.id}/rotate`, admin.key, { gracePeriodSeconds: 60 });
      expect(await leaks(api, sidecar, admin.key, made.id, made.key)).toEqual([]);
      const got = (await api('GET', `/v1/api-keys/${made.id}`, admin.key)).json as Record<string, unknown>;
      expect(Object.keys(got).sort()).toEqual(KEY_OBJECT_FIELDS);
    });

    test('GET reads a key; an unknown id is 404 for every endpoint', async () => {
      const one = await api('GET', `/v1/api-keys/${admin.id}`, admin.key);
      expect(one.status).toBe(200);
      expect(one.json).toMatchObject({ id: admin.id, type: 'server', name: 'admin', createdBy: 'cli' });
      for (const [method, path, body] of [
        ['GET', '/v1/api-keys/key_doesNotExist0000'],
        ['PATCH', '/v1/api-keys/key_doesNotExist0000', { name: 'x' }],
        ['DELETE', '/v1/api-keys/key_doesNotExist0000'],
        ['POST', '/v1/api-keys/key_doesNotExist0000/rotate', {}],
        ['GET', '/v1/api-keys/key_doesNotExist0000/events'],
      ] as Array<[string, string, unknown?]>) {
        const r = await api(method, path, admin.key, body);
        expect(r.status, `${method} ${path}`).toBe(404);
        expect(errorBody(r).error.code).toBe('KEY_NOT_FOUND');
      }
    });

    test('HEAD answers like GET without a body', async () => {
      const r = await send(sidecar.proxyPort, { method: 'HEAD', path: `/v1/api-keys/${admin.id}`, headers: keyHeader(admin.key) });
      expect(r.status).toBe(200);
      expect(r.text).toBe('');
    });

    test.each([
      ['an unknown field', 'nmae', { type: 'server', nmae: 'x' }, /unknown field/],
      ['no type', 'type', { name: 'x' }, /required/],
      ['an unknown type', 'type', { type: 'admin' }, /one of server, connect/],
      ['a name that is not a string', 'name', { type: 'server', name: 7 }, /string/],
      ['roles on a server key', 'roles', { type: 'server', roles: ['reader'] }, /operator keys and access tokens/],
      ['a role the policy lacks', 'roles', { type: 'access-token', roles: ['root'] }, /no role "root"/],
      ['a condition value with a comma', 'conditions', { type: 'access-token', conditions: { factoryId: ['f1,f2'] } }, /comma/],
      ['conditions of the wrong shape', 'conditions', { type: 'access-token', conditions: 'factoryId=f1' }, /object/],
      ['a scoped key without referenceId', 'referenceId', { type: 'scoped' }, /needs a referenceId/],
      ['a referenceId with a space', 'referenceId', { type: 'scoped', referenceId: 'a b' }, /visible ASCII/],
      ['a referenceId that is a key', 'referenceId', { type: 'scoped', referenceId: 'api_krwNv9daBkrjAsqvUsioINzXPTNmmal61XcGdw' }, /may not hold an API key/],
      ['a name that holds a key', 'name', { type: 'server', name: 'copy of scoped_krwNv9daBkrjAsqvUsioINzXPTNmmal61XcGdw' }, /may not hold an API key/],
      ['a condition value that is a key', 'conditions', { type: 'access-token', conditions: { factoryId: ['api_krwNv9daBkrjAsqvUsioINzXPTNmmal61XcGdw'] } }, /may not hold an API key/],
      ['a name that holds a percent-encoded key', 'name', { type: 'server', name: 'scoped%5FkrwNv9daBkrjAsqvUsioINzXPTNmmal61XcGdw' }, /may not hold an API key/],
      ['a description that holds a twice-encoded key', 'description', { type: 'server', description: 'scoped%255FkrwNv9daBkrjAsqvUsioINzXPTNmmal61XcGdw' }, /may not hold an API key/],
      ['a name that holds a key with another separator', 'name', { type: 'server', name: 'scoped.krwNv9daBkrjAsqvUsioINzXPTNmmal61XcGdw' }, /may not hold an API key/],
      [
        'a description that holds a fullwidth key',
        'description',
        { type: 'server', description: '\uff53\uff43\uff4f\uff50\uff45\uff44_krwNv9daBkrjAsqvUsioINzXPTNmmal61XcGdw' },
        /may not hold an API key/,
      ],
      ['a condition value that is a key with +', 'conditions', { type: 'access-token', conditions: { factoryId: ['api+krwNv9daBkrjAsqvUsioINzXPTNmmal61XcGdw'] } }, /may not hold an API key/],
      [
        'a condition attribute that is a key',
        'conditions',
        { type: 'access-token', conditions: { scoped_krwNv9daBkrjAsqvUsioINzXPTNmmal61XcGdw: ['x'] } },
        /condition attribute may not hold an API key/,
      ],
      ['a redirect that holds a key', 'allowedRedirects', { type: 'connect', allowedRedirects: ['https://app.example.com/api%5FkrwNv9daBkrjAsqvUsioINzXPTNmmal61XcGdw'] }, /may not hold an API key/],
      ['an http origin', 'allowedOrigins', { type: 'connect', allowedOrigins: ['http://app.example.com'] }, /loopback/],
      ['origins on a server key', 'allowedOrigins', { type: 'server', allowedOrigins: ['https://app.example.com'] }, /secret/],
      ['a redirect with a fragment', 'allowedRedirects', { type: 'connect', allowedRedirects: ['https://app.example.com/cb#x'] }, /fragment/],
      ['allowReferenceId on a server key', 'allowReferenceId', { type: 'server', allowReferenceId: true }, /connect keys/],
      ['allowReferenceId as a string', 'allowReferenceId', { type: 'connect', allowReferenceId: 'yes' }, /true or false/],
      ['an expiry in the past', 'expiresAt', { type: 'server', expiresAt: '2020-01-01T00:00:00Z' }, /future/],
      ['an expiry without a zone', 'expiresAt', { type: 'server', expiresAt: '2030-01-01T00:00:00' }, /time zone/],
      ['an expiry on a day the calendar lacks', 'expiresAt', { type: 'server', expiresAt: '2030-02-30T00:00:00Z' }, /not a day of the calendar/],
      ['an expiry at 24:00 (the next day to Date.parse)', 'expiresAt', { type: 'server', expiresAt: '2030-01-31T24:00:00Z' }, /not a time of a day/],
      ['an expiry at minute 60', 'expiresAt', { type: 'server', expiresAt: '2030-01-31T12:60:00+01:00' }, /RFC 3339|not a time of a day/],
      ['an expiry with an offset of 24 hours', 'expiresAt', { type: 'server', expiresAt: '2030-01-31T12:00:00+24:00' }, /./],
      ['a condition named __proto__', 'conditions', { type: 'access-token', conditions: JSON.parse('{"__proto__":["x"]}') as unknown }, /__proto__/],
      // A key of a valid checksum (made once for this table, never stored): its bare body, and under four separators.
      ['a name that is a key body without its prefix', 'name', { type: 'server', name: 'I0PruFyxyNwuHCAld2onGXqpLOCTgppI2cwMOf' }, /may not hold an API key/],
      ['a name with a key under four separators', 'name', { type: 'server', name: 'scoped____I0PruFyxyNwuHCAld2onGXqpLOCTgppI2cwMOf' }, /may not hold an API key/],
    ])('POST with %s → 400 INVALID_FIELD naming %s', async (_what, field, body, why) => {
      const before = (await api('GET', '/v1/api-keys?perPage=1', admin.key)).json as { totalItems: number };
      const r = await api('POST', '/v1/api-keys', admin.key, body);
      expect(r.status, r.text).toBe(400);
      const e = errorBody(r).error as { code: string; message: string; field?: string };
      expect(e.code).toBe('INVALID_FIELD');
      expect(e.field).toBe(field);
      expect(e.message.startsWith(`${field}: `)).toBe(true);
      expect(e.message).toMatch(why);
      expect(((await api('GET', '/v1/api-keys?perPage=1', admin.key)).json as { totalItems: number }).totalItems).toBe(before.totalItems);
    });

    test.each([
      ['malformed JSON', 400, 'INVALID_JSON', '{"type":', {}],
      ['a repeated key', 400, 'DUPLICATE_JSON_KEY', '{"type":"server","type":"scoped"}', {}],
      ['a look-alike key', 400, 'DUPLICATE_JSON_KEY', '{"type":"server","Type":"scoped"}', {}],
      ['an array', 400, 'INVALID_FIELD', '[{"type":"server"}]', {}],
      ['a form', 415, 'UNSUPPORTED_MEDIA_TYPE', 'type=server', { 'content-type': 'application/x-www-form-urlencoded' }],
      ['a gzip body', 415, 'UNSUPPORTED_MEDIA_TYPE', '{"type":"server"}', { 'content-encoding': 'gzip' }],
      ['no body', 400, 'INVALID_FIELD', undefined, {}],
    ])('POST with %s → %i %s', async (_what, status, code, body, headers) => {
      const r = await send(sidecar.proxyPort, {
        method: 'POST',
        path: '/v1/api-keys',
        body: body as string | undefined,
        headers: { ...keyHeader(admin.key), ...(body === undefined ? {} : JSON_TYPE), ...headers },
      });
      expect(r.status, r.text).toBe(status);
      expect(errorBody(r).error.code).toBe(code);
    });

    test('GET and DELETE with a body are refused; PATCH may not change type or referenceId', async () => {
      const { id } = (await api('POST', '/v1/api-keys', admin.key, { type: 'scoped', referenceId: 'carol' })).json as { id: string };
      expect(errorBody(await api('GET', `/v1/api-keys/${id}`, admin.key, '{}')).error.code).toBe('BODY_NOT_ALLOWED');
      expect(errorBody(await api('DELETE', `/v1/api-keys/${id}`, admin.key, '{}')).error.code).toBe('BODY_NOT_ALLOWED');
      for (const field of ['type', 'referenceId', 'key', 'keyPrefix', 'createdAt']) {
        const r = await api('PATCH', `/v1/api-keys/${id}`, admin.key, { [field]: 'x' });
        expect(r.status, field).toBe(400);
        expect(r.json).toMatchObject({ error: { code: 'INVALID_FIELD', field, message: `${field}: cannot be changed (create a new key instead)` } });
      }
      expect(((await api('GET', `/v1/api-keys/${id}`, admin.key)).json as { revoked: boolean }).revoked).toBe(false);
    });

    test('PATCH changes name, description, expiry, origins, redirects, roles and conditions, and answers the key', async () => {
      const { id } = (await api('POST', '/v1/api-keys', admin.key, { type: 'connect', name: 'web' })).json as { id: string };
      const expiresAt = new Date(Date.now() + 86_400_000).toISOString();
      const r = await api('PATCH', `/v1/api-keys/${id}`, admin.key, {
        name: 'web app',
        description: null,
        expiresAt,
        allowedOrigins: ['https://App.example.com'],
        allowedRedirects: ['https://app.example.com/done'],
        allowReferenceId: true,
      });
      expect(r.status, r.text).toBe(200);
      expect(r.json).toMatchObject({ id, name: 'web app', expiresAt, allowedOrigins: ['https://app.example.com'], allowedRedirects: ['https://app.example.com/done'], allowReferenceId: true });
      const t = (await api('POST', '/v1/api-keys', admin.key, { type: 'access-token' })).json as { id: string };
      const r2 = await api('PATCH', `/v1/api-keys/${t.id}`, admin.key, { roles: ['device-owner'], conditions: { referenceId: ['alice'] } });
      expect(r2.status, r2.text).toBe(200);
      expect(r2.json).toMatchObject({ roles: ['device-owner'], conditions: { referenceId: ['alice'] } });
      const bad = await api('PATCH', `/v1/api-keys/${id}`, admin.key, { expiresAt: 'soon' });
      expect(bad.json).toMatchObject({ error: { code: 'INVALID_FIELD', field: 'expiresAt' } });
      const never = await api('PATCH', `/v1/api-keys/${id}`, admin.key, { expiresAt: null });
      expect((never.json as { expiresAt: unknown }).expiresAt).toBeNull();
    });

    test('pages: {data, page, perPage, totalItems, totalPages}, filters, and every edge', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) ids.push(((await api('POST', '/v1/api-keys', admin.key, { type: 'scoped', referenceId: 'pager', name: `p${i}` })).json as { id: string }).id);
      const page = async (q: string) =>
        (await api('GET', `/v1/api-keys?${q}`, admin.key)).json as { data: Array<{ id: string }>; page: number; perPage: number; totalItems: number; totalPages: number };
      const seen: string[] = [];
      for (let p = 1; p <= 3; p++) {
        const r = await page(`type=scoped&referenceId=pager&perPage=3&page=${p}`);
        expect(r).toMatchObject({ page: p, perPage: 3, totalItems: 7, totalPages: 3 });
        expect(r.data).toHaveLength(p < 3 ? 3 : 1);
        seen.push(...r.data.map((k) => k.id));
      }
      expect(seen).toEqual(ids); // creation order, no gap, no repeat
      expect(await page('type=scoped&referenceId=pager&perPage=3&page=4')).toMatchObject({ data: [], page: 4, totalItems: 7, totalPages: 3 });
      expect(await page('referenceId=nobody')).toMatchObject({ data: [], page: 1, perPage: 50, totalItems: 0, totalPages: 0 });
      expect((await page('referenceId=pager&perPage=7')).totalPages).toBe(1);
      expect((await page('referenceId=pager&perPage=100')).data).toHaveLength(7);
      await api('DELETE', `/v1/api-keys/${ids[2]}`, admin.key);
      expect(await page('referenceId=pager&revoked=true')).toMatchObject({ totalItems: 1, data: [{ id: ids[2] }] });
      expect((await page('referenceId=pager&revoked=false')).totalItems).toBe(6);
      expect((await page('type=connect&referenceId=pager')).totalItems).toBe(0);
      for (const [q, param] of [
        ['perPage=0', 'perPage'],
        ['perPage=101', 'perPage'],
        ['page=0', 'page'],
        ['page=-1', 'page'],
        ['page=1.5', 'page'],
        ['page=abc', 'page'],
        ['page=1&page=2', 'page'],
        ['revoked=yes', 'revoked'],
        ['type=admin', 'type'],
        ['referenceId=a%20b', 'referenceId'],
        ['sort=name', 'sort'],
        ['Page=2', 'Page'],
      ]) {
        const r = await api('GET', `/v1/api-keys?${q}`, admin.key);
        expect(r.status, q).toBe(400);
        expect(r.json, q).toMatchObject({ error: { code: 'INVALID_PARAMETER', field: param } });
      }
    });

    test('?createdBy= lists what one key made (after a leak, the keys to look at), in creation order', async () => {
      const maker = (await api('POST', '/v1/api-keys', admin.key, { type: 'server', name: 'maker' })).json as { id: string; key: string };
      const made: string[] = [];
      for (let i = 0; i < 3; i++) made.push(((await api('POST', '/v1/api-keys', maker.key, { type: 'scoped', referenceId: `made-${i}` })).json as { id: string }).id);
      const r = (await api('GET', `/v1/api-keys?createdBy=${maker.id}`, admin.key)).json as { data: Array<{ id: string; createdBy: string }>; totalItems: number };
      expect(r.data.map((k) => k.id)).toEqual(made);
      expect(r.totalItems).toBe(3);
      expect(((await api('GET', `/v1/api-keys?createdBy=${maker.id}&type=server`, admin.key)).json as { totalItems: number }).totalItems).toBe(0);
      expect(((await api('GET', `/v1/api-keys?createdBy=${admin.id}&perPage=100`, admin.key)).json as { data: Array<{ id: string }> }).data.map((k) => k.id)).toContain(maker.id);
      for (const bad of ['nobody', 'key_', 'link:', "key_x'--", 'KEY_abc']) {
        const e = await api('GET', `/v1/api-keys?createdBy=${encodeURIComponent(bad)}`, admin.key);
        expect(e.status, bad).toBe(400);
        expect(e.json, bad).toMatchObject({ error: { code: 'INVALID_PARAMETER', field: 'createdBy' } });
      }
    });

    test('DELETE revokes, idempotently; the key is refused at once; a revoked key cannot be changed or rotated', async () => {
      const made = (await api('POST', '/v1/api-keys', admin.key, { type: 'server' })).json as { id: string; key: string };
      expect((await send(sidecar.proxyPort, { path: '/v1/sites', headers: keyHeader(made.key) })).status).toBe(200);
      const first = await api('DELETE', `/v1/api-keys/${made.id}`, admin.key);
      expect(first.status).toBe(200);
      expect(first.json).toMatchObject({ id: made.id, revoked: true });
      const again = await api('DELETE', `/v1/api-keys/${made.id}`, admin.key);
      expect(again.status).toBe(200);
      expect((again.json as { revokedAt: string }).revokedAt).toBe((first.json as { revokedAt: string }).revokedAt);
      expect((await send(sidecar.proxyPort, { path: '/v1/sites', headers: keyHeader(made.key) })).status).toBe(401);
      for (const [method, path, body] of [
        ['PATCH', `/v1/api-keys/${made.id}`, { name: 'x' }],
        ['POST', `/v1/api-keys/${made.id}/rotate`, {}],
      ] as const) {
        const r = await api(method, path, admin.key, body);
        expect(r.status).toBe(409);
        expect(errorBody(r).error.code).toBe('KEY_NOT_ACTIVE');
      }
      const events = (await api('GET', `/v1/api-keys/${made.id}/events`, admin.key)).json as { data: Array<{ event: string }> };
      expect(events.data.map((e) => e.event)).toEqual(['created', 'revoked']);
    });

    test('rotation: same id and settings, a new secret; the old one works within the grace, 401 after', async () => {
      const made = (await api('POST', '/v1/api-keys', admin.key, { type: 'server', name: 'rotating' })).json as { id: string; key: string };
      const r = await api('POST', `/v1/api-keys/${made.id}/rotate`, admin.key, { gracePeriodSeconds: 3 });
      expect(r.status, r.text).toBe(200);
      const rotated = r.json as { id: string; key: string; name: string; keyPrefix: string; previousKeyExpiresAt: string };
      expect(rotated).toMatchObject({ id: made.id, name: 'rotating', keyPrefix: rotated.key.slice(0, 8) });
      expect(rotated.key).not.toBe(made.key);
      const graceEnds = Date.parse(rotated.previousKeyExpiresAt);
      expect(graceEnds - Date.now()).toBeGreaterThan(1_500);
      expect(graceEnds - Date.now()).toBeLessThanOrEqual(3_000);
      backend.reset();
      for (const k of [made.key, rotated.key]) expect((await send(sidecar.proxyPort, { path: '/v1/sites', headers: keyHeader(k) })).status).toBe(200);
      expect(backend.received.map((x) => x.headers['x-keygate-key-id'])).toEqual([made.id, made.id]);
      await sleep(graceEnds - Date.now() + 100);
      expect((await send(sidecar.proxyPort, { path: '/v1/sites', headers: keyHeader(made.key) })).status).toBe(401);
      expect((await send(sidecar.proxyPort, { path: '/v1/sites', headers: keyHeader(rotated.key) })).status).toBe(200);
      // Without a grace period the previous secret stops at once.
      const again = (await api('POST', `/v1/api-keys/${made.id}/rotate`, admin.key)).json as { key: string; previousKeyExpiresAt: null };
      expect(again.previousKeyExpiresAt).toBeNull();
      expect((await send(sidecar.proxyPort, { path: '/v1/sites', headers: keyHeader(rotated.key) })).status).toBe(401);
      expect((await send(sidecar.proxyPort, { path: '/v1/sites', headers: keyHeader(again.key) })).status).toBe(200);
    });

    test('the grace never outlasts the key, nor a week', async () => {
      const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
      const made = (await api('POST', '/v1/api-keys', admin.key, { type: 'server', expiresAt })).json as { id: string };
      const r = await api('POST', `/v1/api-keys/${made.id}/rotate`, admin.key, { gracePeriodSeconds: 604_800 });
      expect((r.json as { previousKeyExpiresAt: string }).previousKeyExpiresAt).toBe(expiresAt);
      for (const bad of [604_801, -1, 1.5, '60', null]) {
        const x = await api('POST', `/v1/api-keys/${made.id}/rotate`, admin.key, { gracePeriodSeconds: bad });
        expect(x.status, String(bad)).toBe(400);
        expect(x.json).toMatchObject({ error: { code: 'INVALID_FIELD', field: 'gracePeriodSeconds' } });
      }
      expect((await api('POST', `/v1/api-keys/${made.id}/rotate`, admin.key, { grace: 1 })).json).toMatchObject({ error: { field: 'grace' } });
    });

    test('the audit trail is complete after a sequence of API and CLI operations, and each is one log line', async () => {
      const made = (await api('POST', '/v1/api-keys', admin.key, { type: 'access-token', name: 'audited' })).json as { id: string; key: string };
      await api('PATCH', `/v1/api-keys/${made.id}`, admin.key, { name: 'audited 2', roles: ['device-owner'], conditions: { referenceId: ['alice'] } });
      await api('PATCH', `/v1/api-keys/${made.id}`, admin.key, { name: 'audited 2' }); // no change: no event
      await api('POST', `/v1/api-keys/${made.id}/rotate`, admin.key, { gracePeriodSeconds: 10 });
      await cli(['keys', 'revoke', made.id, '--store', store]);
      await api('DELETE', `/v1/api-keys/${made.id}`, admin.key); // already revoked: no event
      const r = await api('GET', `/v1/api-keys/${made.id}/events?perPage=2&page=1`, admin.key);
      expect(r.json).toMatchObject({ page: 1, perPage: 2, totalItems: 4, totalPages: 2 });
      const all = ((await api('GET', `/v1/api-keys/${made.id}/events`, admin.key)).json as { data: Array<Record<string, unknown>> }).data;
      expect(all.map((e) => [e.event, e.actor])).toEqual([
        ['created', admin.id],
        ['updated', admin.id],
        ['rotated', admin.id],
        ['revoked', 'cli'],
      ]);
      expect(all[1]!.changes).toEqual({ name: { from: 'audited', to: 'audited 2' }, roles: { from: [], to: ['device-owner'] }, conditions: { from: {}, to: { referenceId: ['alice'] } } });
      expect((all as Array<{ seq: number }>).map((e) => e.seq)).toEqual([...(all as Array<{ seq: number }>).map((e) => e.seq)].sort((a, b) => a - b));
      for (const e of all) expect(Date.parse(e.at as string)).not.toBeNaN();
      const lines = sidecar.logs().filter((l) => l.msg === 'key event' && l.keyId === made.id);
      expect(lines.map((l) => [l.event, l.actor])).toEqual([
        ['created', admin.id],
        ['updated', admin.id],
        ['rotated', admin.id],
      ]);
      expect(JSON.stringify(all) + JSON.stringify(lines)).not.toContain(made.key.slice(8));
    });

    test('an expiry is recorded in the trail', async () => {
      const made = (await api('POST', '/v1/api-keys', admin.key, { type: 'server', expiresAt: new Date(Date.now() + 1_000).toISOString() })).json as { id: string; key: string };
      await sleep(1_200);
      expect((await send(sidecar.proxyPort, { path: '/v1/sites', headers: keyHeader(made.key) })).status).toBe(401);
      const events = ((await api('GET', `/v1/api-keys/${made.id}/events`, admin.key)).json as { data: Array<Record<string, unknown>> }).data;
      expect(events.map((e) => [e.event, e.actor])).toEqual([
        ['created', admin.id],
        ['expired', 'keygate'],
      ]);
      expect(events[1]!.changes).toEqual({ expiresAt: (events[0]!.changes as { expiresAt: string }).expiresAt });
      expect(errorBody(await api('PATCH', `/v1/api-keys/${made.id}`, admin.key, { name: 'x' })).error.code).toBe('KEY_NOT_ACTIVE');
    });

    test('lastUsedAt is written when a sidecar stops (and at most once a minute while it runs)', async () => {
      const made = (await api('POST', '/v1/api-keys', admin.key, { type: 'server' })).json as { id: string; key: string };
      const other = await startSidecar({ upstream: backend.url, store });
      const used = Date.now();
      expect((await send(other.proxyPort, { path: '/v1/sites', headers: keyHeader(made.key) })).status).toBe(200);
      expect(((await api('GET', `/v1/api-keys/${made.id}`, admin.key)).json as { lastUsedAt: unknown }).lastUsedAt).toBeNull();
      expect(await other.stop('SIGTERM')).toBe(0);
      const lastUsedAt = ((await api('GET', `/v1/api-keys/${made.id}`, admin.key)).json as { lastUsedAt: string }).lastUsedAt;
      expect(lastUsedAt).not.toBeNull();
      expect(Math.abs(Date.parse(lastUsedAt) - used)).toBeLessThan(2_500);
    });

    test('keys without the management permission are refused before any handler runs, and the backend received nothing of the API', async () => {
      const scoped = (await api('POST', '/v1/api-keys', admin.key, { type: 'scoped', referenceId: 'dave' })).json as { id: string; key: string };
      const connect = (await api('POST', '/v1/api-keys', admin.key, { type: 'connect' })).json as { id: string; key: string };
      for (const k of [scoped, connect]) {
        for (const [method, path] of [
          ['GET', '/v1/api-keys'],
          ['POST', '/v1/api-keys'],
          ['GET', `/v1/api-keys/${k.id}`],
          ['DELETE', `/v1/api-keys/${k.id}`],
          ['POST', `/v1/api-keys/${k.id}/rotate`],
        ]) {
          const r = await api(method!, path!, k.key, method === 'POST' ? { type: 'server' } : undefined);
          expect(r.status, `${method} ${path}`).toBe(403);
          expect(errorBody(r).error.code).toBe('ACTION_NOT_ALLOWED');
        }
      }
      const all = (await api('GET', '/v1/api-keys?perPage=100', admin.key)).json as { data: Array<{ revoked: boolean; id: string }> };
      expect(all.data.find((k) => k.id === scoped.id)?.revoked).toBe(false);
      expect(backend.received.filter((x) => x.url.startsWith('/v1/api-keys'))).toEqual([]);
      const m = await metrics(sidecar);
      expect(m).toMatch(/route="POST \/v1\/api-keys"/);
    });

    test("the API is Keygate's whole path space: a full-access key's undeclared method is 405 with Allow, a deeper path 404, and the backend receives neither", async () => {
      const operator = await cliKey(store, ['--type', 'operator', '--name', 'ops']);
      backend.reset();
      for (const key of [admin.key, operator.key]) {
        for (const [method, path, allow] of [
          ['PUT', `/v1/api-keys/${admin.id}`, 'GET, PATCH, DELETE, HEAD'],
          ['POST', `/v1/api-keys/${admin.id}`, 'GET, PATCH, DELETE, HEAD'],
          ['PATCH', '/v1/api-keys', 'GET, POST, HEAD'],
          ['DELETE', '/v1/api-keys', 'GET, POST, HEAD'],
          ['OPTIONS', '/v1/api-keys', 'GET, POST, HEAD'],
          ['GET', `/v1/api-keys/${admin.id}/rotate`, 'POST'],
          ['HEAD', `/v1/api-keys/${admin.id}/rotate`, 'POST'],
          ['PUT', `/v1/api-keys/${admin.id}/events`, 'GET, HEAD'],
          ['GET', '/v1/connections', 'POST'],
        ] as Array<[string, string, string]>) {
          const r = await api(method, path, key, method === 'PUT' || method === 'POST' ? { name: 'x' } : undefined);
          expect(r.status, `${method} ${path}`).toBe(405);
          expect(r.headers.allow?.split(', ').sort(), `${method} ${path}`).toEqual(allow.split(', ').sort());
          if (method !== 'HEAD') expect(errorBody(r).error.code).toBe('METHOD_NOT_ALLOWED');
        }
        for (const [method, path] of [
          ['GET', `/v1/api-keys/${admin.id}/foo`],
          ['DELETE', `/v1/api-keys/${admin.id}/events/1`],
          ['POST', `/v1/api-keys/${admin.id}/rotate/now`],
          ['GET', '/v1/connections/lnk_1'],
          ['GET', '/v1/API-KEYS'],
          ['PUT', `/v1/Api-Keys/${admin.id}`],
          ['POST', '/v1/CONNECTIONS'],
          ['GET', '/v1/connection%C5%BF'],
          ['GET', '/v1/%EF%BD%81pi-keys'],
          ['GET', '/v1/api-%E2%84%AAeys'],
          ['GET', '/v1/api-keys.'],
          ['GET', '/v1/api-keys%20'],
          ['GET', '/v1/api-keys.json'],
        ] as Array<[string, string]>) {
          const r = await api(method, path, key);
          expect(r.status, `${method} ${path}`).toBe(404);
          expect(errorBody(r).error.code).toBe('NOT_FOUND');
        }
      }
      // Paths beside the API stay the backend's: a sibling of a forwarded route, an unknown collection.
      for (const path of [`/v1/devices/dev_1/unknown`, '/v1/api-keysx', '/v1/things']) {
        await api('GET', path, admin.key);
      }
      expect(backend.received.map((x) => x.url)).toEqual(['/v1/devices/dev_1/unknown', '/v1/api-keysx', '/v1/things']);
    });
  });
}
