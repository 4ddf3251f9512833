/**
 * Invariant 12, no escalation, from outside: keys of every kind asking the management API
 * to make, widen, keep alive or act on keys with more power than their own, on one store
 * (the test files run it on SQLite and PostgreSQL). Real sidecars, real HTTP, the shipped
 * EVRYTHNG example policy and a policy written here for the edges the shipped ones do not
 * reach. Imports nothing from src/.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { apiOf, cliKey } from './api-keys-suite.ts';
import { type Backend, errorBody, keyHeader, type Res, ROOT, type Sidecar, send, startBackend, startSidecar } from './harness.ts';

const EDGES = `version: 1
resources:
  places:
    attributes: { lookup: 'GET /places/{id}', fields: { factoryId: customFields.factoryId } }
    actions:
      list: [GET /places]
      read: ['GET /places/{id}']
      update: ['PUT /places/{id}']
  products:
    actions:
      list: [GET /products]
  devices:
    attributes: { lookup: 'GET /v1/devices/{id}', fields: [referenceId] }
    actions:
      list: [GET /v1/devices]
  api-keys:
    actions:
      list: [{ route: GET /v1/api-keys, serve: api-keys.list }]
      read: [{ route: 'GET /v1/api-keys/{id}', serve: api-keys.read }]
      create: [{ route: POST /v1/api-keys, serve: api-keys.create }]
      update: [{ route: 'PATCH /v1/api-keys/{id}', serve: api-keys.update }]
      delete: [{ route: 'DELETE /v1/api-keys/{id}', serve: api-keys.revoke }]
      rotate: [{ route: 'POST /v1/api-keys/{id}/rotate', serve: api-keys.rotate }]
roles:
  admin: { permissions: ['*'] }
  factory-reader: { permissions: ['places:list,read'] }
  factory-operator: { permissions: ['places:list,read,update', 'products:list'] }
  token-admin: { permissions: ['api-keys:*'] }
  f1-minter:
    permissions: ['api-keys:create,list,read']
    conditions: { factoryId: f1 }
  device-owner:
    permissions: ['devices:list']
    conditions: { referenceId: '{key.referenceId}' }
  link-maker: { permissions: ['api-keys:create', 'devices:list'] }
keyTypes:
  server: [admin]
  operator: [admin]
  access-token: []
  connect: [link-maker]
  scoped: [device-owner]
`;

function expectRefused(r: Res, code = 'ESCALATION_REFUSED'): void {
  expect(r.status, r.text).toBe(code === 'KEY_NOT_FOUND' ? 404 : 403);
  expect(errorBody(r).error.code).toBe(code);
}

type Made = { id: string; key: string; apiKey?: string };

export function escalationSuite(kind: string, newStore: () => Promise<string>): void {
  describe(`no escalation with the EVRYTHNG example policy on ${kind}`, () => {
    let backend: Backend;
    let sidecar: Sidecar;
    let store: string;
    let operator: { id: string; key: string };
    let minter: Made; // factory-operator + token-minter, factoryId f1
    const api = apiOf(() => sidecar);
    const token = async (as: string, body: Record<string, unknown>): Promise<Res> => api('POST', '/accessTokens', as, body);

    beforeAll(async () => {
      backend = await startBackend();
      store = await newStore();
      operator = await cliKey(store, ['--type', 'operator', '--name', 'operator']);
      sidecar = await startSidecar({ upstream: backend.url, store, policies: join(ROOT, 'policies/examples') });
      const r = await token(operator.key, { name: 'f1 minter', policies: ['factory-operator', 'token-minter'], conditions: ['factoryId:f1'] });
      expect(r.status, r.text).toBe(201);
      minter = r.json as Made;
    });
    afterAll(async () => {
      await sidecar?.stop();
      await backend?.close();
    });

    test('a template with capitals (/accessTokens) is folded too: its other spellings are 404 for the operator, never forwarded', async () => {
      backend.reset();
      for (const [method, path] of [
        ['GET', '/accesstokens'],
        ['POST', '/ACCESSTOKENS'],
        ['GET', '/accessTokens.'],
        ['DELETE', `/AccessTokens/${minter.id}`],
      ]) {
        const r = await api(method!, path!, operator.key, method === 'POST' ? { name: 'x' } : undefined);
        expect(r.status, `${method} ${path}`).toBe(404);
        expect(errorBody(r).error.code).toBe('NOT_FOUND');
      }
      expect(backend.received).toEqual([]);
    });

    test("the operator manages access tokens in EVRYTHNG's shape: the secret once as apiKey", async () => {
      const made = minter as unknown as Record<string, unknown>;
      expect(made).toMatchObject({ name: 'f1 minter', policies: ['factory-operator', 'token-minter'], conditions: ['factoryId:f1'], revoked: false });
      expect(typeof made.apiKey).toBe('string');
      expect(made.key).toBeUndefined();
      const list = await api('GET', '/accessTokens', operator.key);
      expect(list.status).toBe(200);
      expect(Array.isArray(list.json)).toBe(true);
      expect(list.headers['x-result-count']).toBe(String((list.json as unknown[]).length));
      expect(list.text).not.toContain((minter.apiKey as string).slice(8));
      const put = await api('PUT', `/accessTokens/${minter.id}`, operator.key, { description: 'makes f1 readers' });
      expect(put.json).toMatchObject({ description: 'makes f1 readers', policies: ['factory-operator', 'token-minter'] });
      // The operator key is no access token: it is not in the access tokens, nor readable as one.
      expect((list.json as Array<{ id: string }>).map((t) => t.id)).not.toContain(operator.id);
      expectRefused(await api('GET', `/accessTokens/${operator.id}`, operator.key), 'KEY_NOT_FOUND');
    });

    test('a token limited to factory f1 makes a narrower f1 token, and that token is held to f1', async () => {
      const r = await token(minter.apiKey!, { name: 'f1 reader', policies: ['factory-reader'], conditions: ['factoryId:f1'] });
      expect(r.status, r.text).toBe(201);
      const reader = r.json as Made;
      backend.reset();
      await send(sidecar.proxyPort, { path: '/places?factoryId=f2', headers: keyHeader(reader.apiKey!) });
      expect(backend.received.map((x) => x.url)).toEqual(['/places?factoryId=f1']);
      // Narrower still (a second attribute) and equal power are within its own.
      expect((await token(minter.apiKey!, { policies: ['factory-reader'], conditions: ['factoryId:f1', 'site:s1'] })).status).toBe(201);
      expect((await token(minter.apiKey!, { policies: ['factory-operator', 'token-minter'], conditions: ['factoryId:f1'] })).status).toBe(201);
    });

    test.each([
      ['for factory f2', { policies: ['factory-reader'], conditions: ['factoryId:f2'] }],
      ['for f1 and f2', { policies: ['factory-reader'], conditions: ['factoryId:f1', 'factoryId:f2'] }],
      ['without conditions', { policies: ['factory-reader'] }],
      ['without roles or conditions (its power would wait for a policy change)', { name: 'blank' }],
      ['with the admin role, even for f1', { policies: ['admin'], conditions: ['factoryId:f1'] }],
    ])('the f1 token cannot make a token %s', async (_what, body) => {
      const before = (await api('GET', '/accessTokens', minter.apiKey!)).json as unknown[];
      const r = await token(minter.apiKey!, body);
      expectRefused(r);
      expect(((await api('GET', '/accessTokens', minter.apiKey!)).json as unknown[]).length).toBe(before.length);
    });

    test('a key with conditions sees only the keys it made (and itself); others do not exist to it', async () => {
      const mine = ((await token(minter.apiKey!, { name: 'mine', policies: ['factory-reader'], conditions: ['factoryId:f1'] })).json as Made).id;
      const theirs = ((await token(operator.key, { name: 'theirs', policies: ['factory-reader'], conditions: ['factoryId:f1'] })).json as Made).id;
      const seen = ((await api('GET', '/accessTokens?perPage=100', minter.apiKey!)).json as Array<{ id: string }>).map((t) => t.id);
      expect(seen).toContain(mine);
      expect(seen).not.toContain(theirs);
      // Itself, too: what it may read by id, it finds in the list.
      expect(seen).toContain(minter.id);
      expect((await api('GET', `/accessTokens/${mine}`, minter.apiKey!)).status).toBe(200);
      expect((await api('GET', `/accessTokens/${minter.id}`, minter.apiKey!)).status).toBe(200);
      expectRefused(await api('GET', `/accessTokens/${theirs}`, minter.apiKey!), 'KEY_NOT_FOUND');
      expectRefused(await api('GET', `/accessTokens/${operator.id}`, minter.apiKey!), 'KEY_NOT_FOUND');
      expectRefused(await api('DELETE', `/accessTokens/${theirs}`, minter.apiKey!), 'KEY_NOT_FOUND');
      expect(((await api('GET', `/accessTokens/${theirs}`, operator.key)).json as { revoked: boolean }).revoked).toBe(false);
      // What it made, it may revoke (delete is granted); it may not change it (update is not).
      expect((await api('DELETE', `/accessTokens/${mine}`, minter.apiKey!)).status).toBe(200);
      expectRefused(await api('PUT', `/accessTokens/${minter.id}`, minter.apiKey!, { name: 'x' }), 'ACTION_NOT_ALLOWED');
    });

    test('a token that expires makes tokens that expire with it, never later', async () => {
      const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
      const brief = (await token(operator.key, { policies: ['factory-operator', 'token-minter'], conditions: ['factoryId:f1'], expiresAt })).json as Made;
      const child = (await token(brief.apiKey!, { policies: ['factory-reader'], conditions: ['factoryId:f1'] })).json as { expiresAt: string };
      expect(child.expiresAt).toBe(expiresAt);
      expectRefused(await token(brief.apiKey!, { policies: ['factory-reader'], conditions: ['factoryId:f1'], expiresAt: null }));
      expectRefused(await token(brief.apiKey!, { policies: ['factory-reader'], conditions: ['factoryId:f1'], expiresAt: new Date(Date.now() + 7_200_000).toISOString() }));
      const sooner = new Date(Date.now() + 60_000).toISOString();
      expect(((await token(brief.apiKey!, { policies: ['factory-reader'], conditions: ['factoryId:f1'], expiresAt: sooner })).json as { expiresAt: string }).expiresAt).toBe(sooner);
    });

    test('a factory-reader token, without token-minter, may not make tokens at all', async () => {
      const reader = (await token(operator.key, { policies: ['factory-reader'], conditions: ['factoryId:f1'] })).json as Made;
      expectRefused(await token(reader.apiKey!, { policies: ['factory-reader'], conditions: ['factoryId:f1'] }), 'ACTION_NOT_ALLOWED');
    });
  });

  describe(`no escalation at the edges (a policy of its own) on ${kind}`, () => {
    let backend: Backend;
    let sidecar: Sidecar;
    let store: string;
    let operator: { id: string; key: string };
    const api = apiOf(() => sidecar);
    const make = async (as: string, body: Record<string, unknown>): Promise<Res> => api('POST', '/v1/api-keys', as, body);
    const made = async (as: string, body: Record<string, unknown>): Promise<Made> => {
      const r = await make(as, body);
      expect(r.status, r.text).toBe(201);
      return r.json as Made;
    };

    beforeAll(async () => {
      backend = await startBackend();
      store = await newStore();
      const dir = mkdtempSync(join(tmpdir(), 'kg-escalation-'));
      writeFileSync(join(dir, 'policy.yaml'), EDGES);
      operator = await cliKey(store, ['--type', 'operator']);
      sidecar = await startSidecar({ upstream: backend.url, store, policies: dir });
    });
    afterAll(async () => {
      await sidecar?.stop();
      await backend?.close();
    });

    test('?createdBy= for a key that sees only what it made: its own makings, and under another maker only itself', async () => {
      const admin = await made(operator.key, { type: 'access-token', roles: ['token-admin', 'factory-reader'] });
      const reader = await made(admin.key, { type: 'access-token', roles: ['factory-reader'] });
      const other = await made(operator.key, { type: 'access-token', roles: ['factory-reader'] });
      const list = async (q: string) => (await api('GET', `/v1/api-keys?${q}&perPage=100`, admin.key)).json as { data: Array<{ id: string }>; totalItems: number };
      expect((await list(`createdBy=${admin.id}`)).data.map((k) => k.id)).toEqual([reader.id]);
      const underOperator = await list(`createdBy=${operator.id}`);
      expect(underOperator.data.map((k) => k.id)).toEqual([admin.id]);
      expect(underOperator.data.map((k) => k.id)).not.toContain(other.id);
      expect(underOperator.totalItems).toBe(1);
      expect((await list('createdBy=cli')).totalItems).toBe(0);
    });

    test('a token whose grant has no conditions but that does not reach everything sees, and acts on, only the keys it made within its power', async () => {
      const admin = await made(operator.key, { type: 'access-token', roles: ['token-admin', 'factory-reader'] });
      const seen = ((await api('GET', '/v1/api-keys?perPage=100', admin.key)).json as { data: Array<{ id: string }> }).data.map((k) => k.id);
      expect(seen).toEqual([admin.id]);
      expectRefused(await make(admin.key, { type: 'operator' }));
      expectRefused(await make(admin.key, { type: 'server' }));
      expectRefused(await make(admin.key, { type: 'access-token', roles: ['factory-operator'] }));
      // The operator key is not within its power: not there at all to it.
      expectRefused(await api('GET', `/v1/api-keys/${operator.id}`, admin.key), 'KEY_NOT_FOUND');
      expectRefused(await api('DELETE', `/v1/api-keys/${operator.id}`, admin.key), 'KEY_NOT_FOUND');
      expectRefused(await api('POST', `/v1/api-keys/${operator.id}/rotate`, admin.key, {}), 'KEY_NOT_FOUND');
      expectRefused(await api('PATCH', `/v1/api-keys/${operator.id}`, admin.key, { name: 'mine now' }), 'KEY_NOT_FOUND');
      expect(((await api('GET', `/v1/api-keys/${operator.id}`, operator.key)).json as { revoked: boolean; name: string | null }).revoked).toBe(false);
      const reader = await made(admin.key, { type: 'access-token', roles: ['factory-reader'] });
      // PATCH that would widen a key is refused; narrowing it is allowed.
      expectRefused(await api('PATCH', `/v1/api-keys/${reader.id}`, admin.key, { roles: ['factory-operator'] }));
      expectRefused(await api('PATCH', `/v1/api-keys/${reader.id}`, admin.key, { roles: ['factory-reader', 'admin'] }));
      expect((await api('PATCH', `/v1/api-keys/${reader.id}`, admin.key, { conditions: { factoryId: ['f1'] } })).status).toBe(200);
      expect((await api('POST', `/v1/api-keys/${reader.id}/rotate`, admin.key, {})).status).toBe(200);
      const listed = (await api('GET', '/v1/api-keys?perPage=100', admin.key)).json as { data: Array<{ id: string }>; totalItems: number };
      expect(listed.data.map((k) => k.id)).toEqual([admin.id, reader.id]);
      expect(listed.totalItems).toBe(2);
      // A token made by the operator, wider than this one or not: not its to see, nor to rotate.
      const wider = await made(operator.key, { type: 'access-token', roles: ['factory-operator'] });
      const narrower = await made(operator.key, { type: 'access-token', roles: ['factory-reader'] });
      expectRefused(await api('POST', `/v1/api-keys/${wider.id}/rotate`, admin.key, {}), 'KEY_NOT_FOUND');
      expectRefused(await api('GET', `/v1/api-keys/${narrower.id}`, admin.key), 'KEY_NOT_FOUND');
      // The operator key reaches everything and sees every key.
      const all = ((await api('GET', '/v1/api-keys?perPage=100', operator.key)).json as { data: Array<{ id: string }> }).data.map((k) => k.id);
      for (const id of [operator.id, admin.id, reader.id, wider.id, narrower.id]) expect(all).toContain(id);
    });

    test('only a key that reaches everything may make, or see, a connect key that may choose referenceIds (through a link it could mint a key to any user)', async () => {
      const admin = await made(operator.key, { type: 'access-token', roles: ['token-admin', 'link-maker'] });
      // The same connect key without the switch is within its power.
      expect((await make(admin.key, { type: 'connect', allowedRedirects: ['https://app.example.com/cb'] })).status).toBe(201);
      const r = await make(admin.key, { type: 'connect', allowReferenceId: true, allowedRedirects: ['https://app.example.com/cb'] });
      expectRefused(r);
      expect((errorBody(r).error as { field?: string }).field).toBe('allowReferenceId');
      const plain = await made(admin.key, { type: 'connect' });
      expectRefused(await api('PATCH', `/v1/api-keys/${plain.id}`, admin.key, { allowReferenceId: true }));
      // One made by the operator is not within its power: not there at all to it.
      const trusted = await made(operator.key, { type: 'connect', allowReferenceId: true });
      expectRefused(await api('GET', `/v1/api-keys/${trusted.id}`, admin.key), 'KEY_NOT_FOUND');
      expectRefused(await api('POST', `/v1/api-keys/${trusted.id}/rotate`, admin.key, {}), 'KEY_NOT_FOUND');
      const seen = ((await api('GET', '/v1/api-keys?perPage=100', admin.key)).json as { data: Array<{ id: string }> }).data.map((k) => k.id);
      expect(seen).not.toContain(trusted.id);
      expect(seen).toContain(plain.id);
    });

    test('no key can change itself into more', async () => {
      const self = await made(operator.key, { type: 'access-token', roles: ['token-admin', 'factory-reader'], conditions: { factoryId: ['f1'] } });
      for (const body of [
        { roles: ['token-admin', 'factory-operator'] },
        { conditions: {} },
        { conditions: { factoryId: ['f1', 'f2'] } },
        { conditions: { factoryId: ['f2'] } },
        { roles: ['admin'] },
      ]) {
        expectRefused(await api('PATCH', `/v1/api-keys/${self.id}`, self.key, body));
      }
      const after = (await api('GET', `/v1/api-keys/${self.id}`, operator.key)).json as Record<string, unknown>;
      expect(after).toMatchObject({ roles: ['token-admin', 'factory-reader'], conditions: { factoryId: ['f1'] } });
      expect((await api('PATCH', `/v1/api-keys/${self.id}`, self.key, { name: 'me', conditions: { factoryId: ['f1'], site: ['s1'] } })).status).toBe(200);
      // Narrowed, it cannot widen back.
      expectRefused(await api('PATCH', `/v1/api-keys/${self.id}`, self.key, { conditions: { factoryId: ['f1'] } }));
      // It may rotate and revoke itself.
      const rotated = (await api('POST', `/v1/api-keys/${self.id}/rotate`, self.key, {})).json as Made;
      expect((await api('DELETE', `/v1/api-keys/${self.id}`, rotated.key)).status).toBe(200);
    });

    test('an expiring key cannot make itself, or another, outlive it', async () => {
      const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
      const brief = await made(operator.key, { type: 'access-token', roles: ['token-admin', 'factory-reader'], expiresAt });
      expectRefused(await api('PATCH', `/v1/api-keys/${brief.id}`, brief.key, { expiresAt: null }));
      expectRefused(await api('PATCH', `/v1/api-keys/${brief.id}`, brief.key, { expiresAt: new Date(Date.now() + 7_200_000).toISOString() }));
      const child = await made(brief.key, { type: 'access-token', roles: ['factory-reader'] });
      expectRefused(await api('PATCH', `/v1/api-keys/${child.id}`, brief.key, { expiresAt: null }));
    });

    test('an expiring key, or the old secret in a grace period, cannot rotate its way to a secret that outlives it', async () => {
      const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
      // A token as wide as the operator, for an hour: it may act on the operator's key, but not take a lasting secret of it.
      const brief = await made(operator.key, { type: 'access-token', roles: ['admin'], expiresAt });
      const refused = await api('POST', `/v1/api-keys/${operator.id}/rotate`, brief.key, { gracePeriodSeconds: 604800 });
      expectRefused(refused);
      expect(errorBody(refused).error.message).toMatch(/outlive/);
      expect((await api('GET', '/v1/api-keys?perPage=1', operator.key)).status).toBe(200);
      // It may still rotate itself (the new secret ends when it does), and keys that end no later.
      const self = (await api('POST', `/v1/api-keys/${brief.id}/rotate`, brief.key, {})).json as Made & { expiresAt: string };
      expect(self.expiresAt).toBe(expiresAt);
      const child = await made(self.key, { type: 'access-token', roles: ['factory-reader'] });
      expect((await api('POST', `/v1/api-keys/${child.id}/rotate`, self.key, {})).status).toBe(200);

      // The owner rotates a key with a grace period; the old secret works through it, but cannot rotate or widen the key.
      const leaked = await made(operator.key, { type: 'access-token', roles: ['token-admin', 'factory-reader'] });
      const fresh = (await api('POST', `/v1/api-keys/${leaked.id}/rotate`, operator.key, { gracePeriodSeconds: 60 })).json as Made;
      expect((await api('GET', `/v1/api-keys/${leaked.id}`, leaked.key)).status).toBe(200);
      for (const grace of [0, 604800]) expectRefused(await api('POST', `/v1/api-keys/${leaked.id}/rotate`, leaked.key, { gracePeriodSeconds: grace }));
      expectRefused(await api('PATCH', `/v1/api-keys/${leaked.id}`, leaked.key, { name: 'mine now' }));
      // The owner's new secret is untouched and may rotate.
      expect((await api('GET', `/v1/api-keys/${leaked.id}`, fresh.key)).status).toBe(200);
      expect((await api('POST', `/v1/api-keys/${leaked.id}/rotate`, fresh.key, {})).status).toBe(200);
    });

    test("the conditions of the grant bound what may be made, even when the maker's own reach is wider", async () => {
      const scopedMinter = await made(operator.key, { type: 'access-token', roles: ['f1-minter', 'factory-operator'] });
      expectRefused(await make(scopedMinter.key, { type: 'access-token', roles: ['factory-reader'] }));
      expectRefused(await make(scopedMinter.key, { type: 'access-token', roles: ['factory-reader'], conditions: { factoryId: ['f2'] } }));
      const ok = await make(scopedMinter.key, { type: 'access-token', roles: ['factory-reader'], conditions: { factoryId: ['f1'] } });
      expect(ok.status, ok.text).toBe(201);
      // Its grant has conditions, so it sees only what it made, and itself.
      const seen = ((await api('GET', '/v1/api-keys', scopedMinter.key)).json as { data: Array<{ id: string }> }).data.map((k) => k.id);
      expect(seen).toEqual([scopedMinter.id, (ok.json as Made).id]);
    });

    test("scoped keys are made only by keys allowed to mint them, with the Connect flow's referenceId rules", async () => {
      const web = await made(operator.key, { type: 'connect', allowedOrigins: ['https://app.example.com'] });
      const generated = await make(web.key, { type: 'scoped' });
      expect(generated.status, generated.text).toBe(201);
      expect((generated.json as { referenceId: string }).referenceId).toMatch(/^texture-generated:[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expectRefused(await make(web.key, { type: 'scoped', referenceId: 'alice' }), 'REFERENCE_ID_NOT_ALLOWED');
      expectRefused(await make(web.key, { type: 'scoped', referenceId: null, allowedOrigins: ['https://evil.example'] }));
      expect((await make(web.key, { type: 'scoped', allowedOrigins: ['https://app.example.com'] })).status).toBe(201);
      expectRefused(await make(web.key, { type: 'server' }));
      expectRefused(await make(web.key, { type: 'connect', allowReferenceId: true }));
      expectRefused(await make(web.key, { type: 'connect', allowedRedirects: ['https://app.example.com/cb'] }));
      // A connect key made to choose referenceIds may.
      const chooser = await made(operator.key, { type: 'connect', allowReferenceId: true });
      const alice = await made(chooser.key, { type: 'scoped', referenceId: 'alice' });
      backend.reset();
      await send(sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(alice.key) });
      expect(backend.received.map((x) => x.url)).toEqual(['/v1/devices?referenceId=alice']);
      // A token without devices power may not mint scoped keys at all.
      const admin = await made(operator.key, { type: 'access-token', roles: ['token-admin', 'factory-reader'] });
      expectRefused(await make(admin.key, { type: 'scoped', referenceId: 'bob' }));
      // A scoped key may not mint (it has no api-keys permission).
      expectRefused(await make(alice.key, { type: 'scoped', referenceId: 'alice' }), 'ACTION_NOT_ALLOWED');
    });
  });
}
