// Invariant 10 (no oracle) for the status of an owner lookup. Keygate proves a scoped
// key's single reads (a device, its history, a command sent to it, a command's device) by
// a GET of the device, sent with `X-Keygate-Reference-Id`. A backend that honours that
// header answers another user's device with 403 (or 401, 400, 422, 451) and an unknown id
// with 404. Whatever it answers short of a 5xx, alice must get the same answer for bob's
// device as for one that does not exist, and the failed lookup must be cached as a 404 is,
// so that her next request does not take a different time either.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { type Backend, createKeySet, type KeyInfo, type KeySet, keyHeader, type Received, type Res, type Sidecar, send, startBackend, startSidecar } from './harness.ts';

let backend: Backend;
let keys: KeySet;
let sidecar: Sidecar;
/** The status the backend gives a lookup of a device of another user than the one in X-Keygate-Reference-Id. */
let foreignStatus = 403;

/** `dev-bob-t…` are bob's devices, `cmd-t-X` a command of `dev-bob-tX`; everything else falls through (an unknown id is 404). */
function respond(rec: Received) {
  const dev = /^\/v1\/devices\/dev-bob-t([\w-]+)(\/history)?$/.exec(rec.url);
  if (dev) {
    const id = `dev-bob-t${dev[1]}`;
    if (rec.headers['x-keygate-reference-id'] !== 'bob') return { status: foreignStatus, body: JSON.stringify({ error: 'not your device' }) };
    if (dev[2] === undefined) return { status: 200, body: JSON.stringify({ id, referenceId: 'bob', secret: 'BOB_SECRET' }) };
    return { status: 200, body: JSON.stringify({ data: [{ id: `h-${id}`, deviceId: id, secret: 'BOB_SECRET' }], page: 1, perPage: 50, totalItems: 1, totalPages: 1 }) };
  }
  const cmd = /^\/v1\/commands\/cmd-t-([\w-]+)$/.exec(rec.url);
  if (cmd && rec.method === 'GET') return { status: 200, body: JSON.stringify({ id: `cmd-t-${cmd[1]}`, deviceId: `dev-bob-t${cmd[1]}`, status: 'succeeded', note: 'BOB_CMD' }) };
  return undefined;
}

beforeAll(async () => {
  backend = await startBackend();
  keys = await createKeySet();
  sidecar = await startSidecar({ upstream: backend.url, store: keys.store });
});
afterAll(async () => {
  await sidecar?.stop();
  await backend?.close();
});
beforeEach(() => {
  backend.reset();
  backend.responder = respond;
  foreignStatus = 403;
});

/** A name no earlier request to this sidecar used (lookups are cached for the policy's ttl). */
let serial = 0;
function fresh(): string {
  serial += 1;
  return `${Date.now().toString(36)}-${serial}`;
}

function get(path: string, key: KeyInfo = keys.alice): Promise<Res> {
  return send(sidecar.proxyPort, { path, headers: keyHeader(key) });
}

function command(deviceId: string, key: KeyInfo = keys.alice): Promise<Res> {
  return send(sidecar.proxyPort, { method: 'POST', path: '/v1/commands/thermostat/set', headers: { ...keyHeader(key), 'content-type': 'application/json' }, body: JSON.stringify({ deviceId }) });
}

/** Everything the client got, except what differs per request anyway (its id, in the header and the error body; the date). */
function seen(r: Res): string {
  const headers = Object.entries(r.headers)
    .filter(([h]) => h !== 'date' && h !== 'x-request-id')
    .sort();
  return JSON.stringify({ status: r.status, headers, body: r.text.replace(String(r.headers['x-request-id']), '<id>') });
}

function code(r: Res): string | undefined {
  return (r.json as { error?: { code?: string } } | null)?.error?.code;
}

function lookupsOf(id: string): number {
  return backend.received.filter((r) => r.headers['x-keygate-purpose'] === 'attribute-lookup' && r.url === `/v1/devices/${id}`).length;
}

/** Requests other than owner lookups: nothing of a refused request may reach the backend. */
function forwarded(): Received[] {
  return backend.received.filter((r) => r.headers['x-keygate-purpose'] !== 'attribute-lookup');
}

describe('a lookup refused by a backend that honours X-Keygate-Reference-Id is the 403 of an unknown id', () => {
  test.each([400, 401, 403, 422, 451])("lookup answered %i for bob's device: GET, /history, POST /v1/commands and GET of its command look as for an unknown id", async (status) => {
    foreignStatus = status;
    const t = fresh();
    const bobs = `dev-bob-t${t}`;
    const unknown = `dev-none-${t}`;
    const pairs: Array<[string, Res, Res]> = [
      ['GET device', await get(`/v1/devices/${bobs}`), await get(`/v1/devices/${unknown}`)],
      ['GET history', await get(`/v1/devices/${bobs}/history`), await get(`/v1/devices/${unknown}/history`)],
      ['POST command', await command(bobs), await command(unknown)],
    ];
    // A command of bob's device (its answer names dev-bob-t…) and an unknown command.
    const cmdT = fresh();
    pairs.push(['GET command', await get(`/v1/commands/cmd-t-${cmdT}`), await get(`/v1/commands/cmd-none-${cmdT}`)]);
    for (const [what, foreign, none] of pairs) {
      expect(foreign.status, `${what}: ${foreign.text}`).toBe(403);
      expect(code(foreign), what).toBe('RESOURCE_NOT_ALLOWED');
      expect(seen(foreign), what).toBe(seen(none));
      expect(foreign.text).not.toContain('BOB');
    }
    // The lookup was made, and answered as configured (not a fixture): the backend saw alice's referenceId.
    expect(backend.received.some((r) => r.url === `/v1/devices/${bobs}` && r.headers['x-keygate-reference-id'] === 'alice')).toBe(true);
    // Nothing but the two command reads (proven from their answer) was forwarded.
    expect(forwarded().map((r) => `${r.method} ${r.url}`)).toEqual([`GET /v1/commands/cmd-t-${cmdT}`, `GET /v1/commands/cmd-none-${cmdT}`]);
    // Alice's refused lookup is hers alone: bob, whose lookup the backend answers 200, reads his device.
    const own = await get(`/v1/devices/${bobs}`, keys.bob);
    expect(own.status, own.text).toBe(200);
    expect(own.text).toContain('BOB_SECRET');
  });
});

describe('the refused lookup is cached as a not-found one (the same timing class)', () => {
  test.each([401, 403, 422])("lookup answered %i: alice's second request for bob's device is answered from her cache, as for an unknown id", async (status) => {
    foreignStatus = status;
    const t = fresh();
    const bobs = `dev-bob-t${t}`;
    const unknown = `dev-none-${t}`;
    for (let i = 0; i < 3; i++) {
      expect((await get(`/v1/devices/${bobs}`)).status).toBe(403);
      expect((await get(`/v1/devices/${unknown}/history`)).status).toBe(403);
    }
    expect(lookupsOf(unknown)).toBe(1);
    expect(lookupsOf(bobs)).toBe(lookupsOf(unknown));
  });

  test('429 and 408 (the backend is busy) are 403 too but not kept; a 5xx stays 502 UPSTREAM_BAD_RESPONSE', async () => {
    for (const status of [429, 408]) {
      foreignStatus = status;
      const bobs = `dev-bob-t${fresh()}`;
      const first = await get(`/v1/devices/${bobs}`);
      expect(first.status, `${status}: ${first.text}`).toBe(403);
      expect(code(first)).toBe('RESOURCE_NOT_ALLOWED');
      expect((await get(`/v1/devices/${bobs}`)).status).toBe(403);
      expect(lookupsOf(bobs), `${status} is not cached`).toBe(2);
    }
    foreignStatus = 503;
    const r = await get(`/v1/devices/dev-bob-t${fresh()}`);
    expect(r.status).toBe(502);
    expect(code(r)).toBe('UPSTREAM_BAD_RESPONSE');
    expect(forwarded()).toEqual([]);
  });
});
