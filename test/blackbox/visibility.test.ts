/**
 * Who sees which keys through the management API: a key bound to one user, granted
 * `api-keys:list,read` without conditions, sees only the keys it made that are within its
 * power, and itself — not the other users' keys, not the server or connect keys, not their
 * audit trails — and its page totals count nothing else (the answer does not move when
 * others make keys). The server key still sees every key. Real sidecar, real HTTP, the
 * shipped Texture policy plus a role that grants the endpoint. Imports nothing from src/.
 */
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiOf, cliKey } from './api-keys-suite.ts';
import { type Backend, errorBody, POLICIES, type Sidecar, send, startBackend, startSidecar, tempStore } from './harness.ts';

let backend: Backend;
let sidecar: Sidecar;
let store: string;
const api = apiOf(() => sidecar);
let server: { id: string; key: string };
let connect: { id: string; key: string };
let bob: { id: string; key: string };
let alice: { id: string; key: string };
let aliceScoped: { id: string; key: string };

interface Listed {
  data: Array<{ id: string; referenceId: string | null }>;
  totalItems: number;
  totalPages: number;
}

beforeAll(async () => {
  backend = await startBackend();
  const policies = mkdtempSync(join(tmpdir(), 'keygate-bb-visibility-'));
  copyFileSync(join(POLICIES, 'texture.yaml'), join(policies, 'texture.yaml'));
  writeFileSync(join(policies, 'minter.yaml'), "version: 1\nroles:\n  key-minter:\n    permissions: ['api-keys:create,list,read,update,rotate']\n");
  store = tempStore();
  server = await cliKey(store, ['--type', 'server']);
  connect = await cliKey(store, ['--type', 'connect', '--allow-origin', 'https://app.example.com']);
  bob = await cliKey(store, ['--type', 'scoped', '--reference-id', 'bob']);
  aliceScoped = await cliKey(store, ['--type', 'scoped', '--reference-id', 'alice']);
  alice = await cliKey(store, ['--type', 'access-token', '--role', 'device-owner', '--role', 'key-minter', '--reference-id', 'alice']);
  sidecar = await startSidecar({ upstream: backend.url, store, policies });
}, 60_000);
afterAll(async () => {
  await sidecar?.stop();
  await backend?.close();
});

describe('a user-bound key granted api-keys:list,read without conditions', () => {
  it('lists itself and the keys it made within its power, in creation order; its totals count nothing else, however many keys others make', async () => {
    const child = await api('POST', '/v1/api-keys', alice.key, { type: 'access-token', roles: ['device-owner'], referenceId: 'alice', name: 'alice child' });
    expect(child.status, child.text).toBe(201);
    const childId = (child.json as { id: string }).id;
    const listed = (await api('GET', '/v1/api-keys?perPage=100', alice.key)).json as Listed;
    expect(listed.data.map((k) => k.id)).toEqual([alice.id, childId]);
    expect(listed.totalItems).toBe(2);
    // Filters and pages over what it sees only: no count oracle on other users' keys.
    for (const q of ['type=scoped', 'referenceId=bob', 'referenceId=alice&type=scoped', 'type=server', 'revoked=true']) {
      expect(((await api('GET', `/v1/api-keys?${q}`, alice.key)).json as Listed).totalItems, q).toBe(0);
    }
    for (const q of ['type=access-token', 'referenceId=alice', 'revoked=false']) {
      expect(
        ((await api('GET', `/v1/api-keys?${q}`, alice.key)).json as Listed).data.map((k) => k.id),
        q,
      ).toEqual([alice.id, childId]);
    }
    expect((await api('GET', '/v1/api-keys?page=1&perPage=1', alice.key)).json).toMatchObject({ data: [{ id: alice.id }], totalItems: 2, totalPages: 2 });
    expect((await api('GET', '/v1/api-keys?page=2&perPage=1', alice.key)).json).toMatchObject({ data: [{ id: childId }], totalItems: 2, totalPages: 2 });
    expect((await api('GET', '/v1/api-keys?page=3&perPage=1', alice.key)).json).toMatchObject({ data: [], totalItems: 2, totalPages: 2 });
    await cliKey(store, ['--type', 'scoped', '--reference-id', 'carol']);
    await api('POST', '/v1/api-keys', server.key, { type: 'access-token', roles: ['device-owner'], referenceId: 'bob' });
    expect(((await api('GET', '/v1/api-keys', alice.key)).json as Listed).totalItems).toBe(2);
    // The server key reaches everything, so it still sees every key.
    const all = ((await api('GET', '/v1/api-keys?perPage=100', server.key)).json as Listed).data.map((k) => k.id);
    for (const id of [server.id, connect.id, bob.id, aliceScoped.id, alice.id, childId]) expect(all).toContain(id);
    // Made by it, but widened since by the server key beyond its power: no longer its to see.
    expect((await api('PATCH', `/v1/api-keys/${childId}`, server.key, { roles: ['device-owner', 'connect-link'] })).status).toBe(200);
    expect((await api('GET', '/v1/api-keys', alice.key)).json).toMatchObject({ data: [{ id: alice.id }], totalItems: 1 });
    expect((await api('GET', `/v1/api-keys/${childId}`, alice.key)).status).toBe(404);
  });

  it('reads neither another key nor its audit trail (404, as an id nobody has), only itself and what it made', async () => {
    for (const other of [server, connect, bob, aliceScoped]) {
      for (const path of [`/v1/api-keys/${other.id}`, `/v1/api-keys/${other.id}/events`]) {
        const r = await api('GET', path, alice.key);
        expect(r.status, path).toBe(404);
        expect(errorBody(r).error.code).toBe('KEY_NOT_FOUND');
      }
      // Nor changes it: the same 404, so a refusal says nothing about whether the key exists.
      expect((await api('PATCH', `/v1/api-keys/${other.id}`, alice.key, { name: 'x' })).status).toBe(404);
      expect((await api('POST', `/v1/api-keys/${other.id}/rotate`, alice.key, {})).status).toBe(404);
    }
    expect((await api('GET', '/v1/api-keys/key_00000000000000000000000000', alice.key)).status).toBe(404);
    expect((await api('GET', `/v1/api-keys/${alice.id}`, alice.key)).status).toBe(200);
    expect((await api('GET', `/v1/api-keys/${alice.id}/events`, alice.key)).status).toBe(200);
    const made = (await api('POST', '/v1/api-keys', alice.key, { type: 'access-token', roles: ['device-owner'], referenceId: 'alice' })).json as { id: string };
    expect((await api('GET', `/v1/api-keys/${made.id}/events`, alice.key)).json).toMatchObject({ totalItems: 1, data: [{ event: 'created', actor: alice.id }] });
    // The server key reads every key's trail.
    expect((await api('GET', `/v1/api-keys/${bob.id}/events`, server.key)).status).toBe(200);
  });
});

describe('a key that made many keys', () => {
  // Invariant 11: listing one's own creations judges each of them (the total counts visible
  // keys only); that scan may not stop the event loop for the other keys.
  const MADE = 4000;
  let minterSidecar: Sidecar;
  let minter: { id: string; key: string };
  const examples = join(POLICIES, 'examples');
  const evrythngApi = apiOf(() => minterSidecar);

  beforeAll(async () => {
    const evrythngStore = tempStore();
    const factories = Array.from({ length: 10 }, (_, i) => ['--condition', `factoryId:f${i}`]).flat();
    minter = await cliKey(evrythngStore, ['--type', 'access-token', '--role', 'factory-operator', '--role', 'token-minter', ...factories, '--policies', examples]);
    minterSidecar = await startSidecar({ upstream: backend.url, store: evrythngStore, policies: examples });
    // Tokens of many powers: each another subset of the minter's factories.
    const make = async (w: number): Promise<void> => {
      for (let i = w; i < MADE; i += 16) {
        const subset = Array.from({ length: 10 }, (_, j) => ((i >> j) & 1 ? `factoryId:f${j}` : null)).filter((c) => c !== null);
        const r = await evrythngApi('POST', '/accessTokens', minter.key, { policies: ['factory-reader'], conditions: subset.length > 0 ? subset : ['factoryId:f0'] });
        expect(r.status, r.text).toBe(201);
      }
    };
    await Promise.all(Array.from({ length: 16 }, (_, w) => make(w)));
  }, 120_000);
  afterAll(async () => {
    await minterSidecar?.stop();
  });

  it('lists them with the right total, and eight such lists at once leave the health check waiting less than one list takes', async () => {
    const alone = await evrythngApi('GET', '/accessTokens?perPage=1', minter.key);
    expect(alone.status, alone.text).toBe(200);
    expect(alone.headers['x-result-count']).toBe(String(MADE + 1));
    let done = false;
    const lists = Promise.all(Array.from({ length: 8 }, () => evrythngApi('GET', '/accessTokens?perPage=1', minter.key))).finally(() => {
      done = true;
    });
    let worst = 0;
    while (!done) {
      const t = performance.now();
      expect((await send(minterSidecar.opsPort, { path: '/healthz' })).status).toBe(200);
      worst = Math.max(worst, performance.now() - t);
    }
    const all = await lists;
    for (const r of all) expect(r.headers['x-result-count']).toBe(String(MADE + 1));
    console.log(
      `[observation] ${MADE} tokens made by one token: one list ${alone.ms.toFixed(0)} ms, eight at once ${Math.max(...all.map((r) => r.ms)).toFixed(0)} ms, slowest health check beside them ${worst.toFixed(0)} ms`,
    );
    // Before: each list ran to its end without yielding, so a probe waited a whole list or more.
    expect(worst).toBeLessThan(alone.ms);
  }, 60_000);
});
