// Invariant 10 (no oracle) for the owner lookups: a scoped key's request for one device is
// proven by a lookup on the backend, cached for the resource's ttl. That cache, and the
// lookups in flight, must be the asking user's own: if alice's request could be answered
// from (or join) a lookup bob's request caused, it would take 2 ms instead of the
// backend's 40 and tell her that the device exists and bob used it a moment ago. Rather
// than time answers, these tests count what the backend received: alice's request must
// reach the backend with a lookup of its own whatever bob did. And the request ids a
// client sees must not count the requests other keys made between two of its own.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { type Backend, createKey, createKeySet, type KeyInfo, type KeySet, keyHeader, type Received, type Res, type Sidecar, send, startBackend, startSidecar } from './harness.ts';

let backend: Backend;
let keys: KeySet;
let alice2: KeyInfo; // a second scoped key of alice's
let sidecar: Sidecar;

/** Devices the backend knows besides the harness's: `dev-bob-t…` are bob's, `dev-alice-t…` alice's. */
function respond(rec: Received) {
  const dev = /^\/v1\/devices\/(dev-(alice|bob)-t[\w-]+)(\/history)?$/.exec(rec.url);
  if (dev) {
    const body =
      dev[3] === undefined
        ? { id: dev[1], referenceId: dev[2], secret: `SECRET_OF_${dev[2]}` }
        : { data: [{ id: `h-${dev[1]}`, deviceId: dev[1] }], page: 1, perPage: 50, totalItems: 1, totalPages: 1 };
    return { status: 200, body: JSON.stringify(body) };
  }
  const cmd = /^\/v1\/commands\/cmd-t-([\w-]+)$/.exec(rec.url);
  if (cmd) return { status: 200, body: JSON.stringify({ id: `cmd-t-${cmd[1]}`, deviceId: `dev-bob-t${cmd[1]}`, status: 'succeeded', note: 'BOB_CMD' }) };
  return undefined;
}

beforeAll(async () => {
  backend = await startBackend();
  keys = await createKeySet();
  alice2 = await createKey(keys.store, 'scoped', 'alice');
  sidecar = await startSidecar({ upstream: backend.url, store: keys.store });
});
afterAll(async () => {
  await sidecar?.stop();
  await backend?.close();
});
beforeEach(() => {
  backend.reset();
  backend.responder = respond;
});

/** A name no earlier test (nor an earlier run against the same process) used. */
let serial = 0;
function fresh(): string {
  serial += 1;
  return `${Date.now().toString(36)}-${serial}`;
}

function get(path: string, key: KeyInfo): Promise<Res> {
  return send(sidecar.proxyPort, { path, headers: keyHeader(key) });
}

/** The owner lookups the backend received, as `path referenceId`. */
function lookups(): string[] {
  return backend.received.filter((r) => r.headers['x-keygate-purpose'] === 'attribute-lookup').map((r) => `${r.url} ${String(r.headers['x-keygate-reference-id'])}`);
}

/** Everything the client got, except what differs per request anyway (its id, in the header and the error body; the date). */
function seen(r: Res): string {
  const headers = Object.entries(r.headers)
    .filter(([h]) => h !== 'date' && h !== 'x-request-id')
    .sort();
  return JSON.stringify({ status: r.status, headers, body: r.text.replace(String(r.headers['x-request-id']), '<id>') });
}

async function until(what: () => boolean, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !what(); ) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("a lookup another user's request caused never answers alice's", () => {
  test("bob just read his device: alice's request for it is still looked up on the backend, and is the 403 of an unknown id", async () => {
    const t = fresh();
    const bob = await get(`/v1/devices/dev-bob-t${t}`, keys.bob);
    expect(bob.status, bob.text).toBe(200);
    expect(lookups()).toEqual([`/v1/devices/dev-bob-t${t} bob`]);
    backend.received.length = 0;

    const foreign = await get(`/v1/devices/dev-bob-t${t}`, keys.alice);
    expect(foreign.status).toBe(403);
    expect(foreign.text).not.toContain('SECRET_OF_bob');
    expect(lookups()).toEqual([`/v1/devices/dev-bob-t${t} alice`]);
    const unknown = await get(`/v1/devices/dev-nobody-${t}`, keys.alice);
    expect(seen(foreign)).toBe(seen(unknown));
    // Only the lookups: neither 403 was forwarded.
    expect(backend.received.map((r) => r.url)).toEqual([`/v1/devices/dev-bob-t${t}`, `/v1/devices/dev-nobody-${t}`]);
  });

  test("bob just asked for an unknown id: alice's request for it is looked up again", async () => {
    const t = fresh();
    expect((await get(`/v1/devices/dev-nobody-${t}`, keys.bob)).status).toBe(403);
    backend.received.length = 0;
    expect((await get(`/v1/devices/dev-nobody-${t}`, keys.alice)).status).toBe(403);
    expect(lookups()).toEqual([`/v1/devices/dev-nobody-${t} alice`]);
  });

  test("a sub-resource of bob's device (history), after bob read it: alice's request is looked up", async () => {
    const t = fresh();
    expect((await get(`/v1/devices/dev-bob-t${t}/history`, keys.bob)).status).toBe(200);
    backend.received.length = 0;
    expect((await get(`/v1/devices/dev-bob-t${t}/history`, keys.alice)).status).toBe(403);
    expect(lookups()).toEqual([`/v1/devices/dev-bob-t${t} alice`]);
  });

  test("bob's command was just read: the lookup of its device for alice's read goes to the backend", async () => {
    const t = fresh();
    const bob = await get(`/v1/commands/cmd-t-${t}`, keys.bob);
    expect(bob.status, bob.text).toBe(200);
    expect(lookups()).toEqual([`/v1/devices/dev-bob-t${t} bob`]);
    backend.received.length = 0;
    const alice = await get(`/v1/commands/cmd-t-${t}`, keys.alice);
    expect(alice.status).toBe(403);
    expect(alice.text).not.toContain('BOB_CMD');
    expect(lookups()).toEqual([`/v1/devices/dev-bob-t${t} alice`]);
  });

  test("alice's request never joins bob's lookup in flight", async () => {
    const t = fresh();
    backend.delayMs = 300;
    const bob = get(`/v1/devices/dev-bob-t${t}`, keys.bob);
    await until(() => lookups().length === 1);
    const alice = get(`/v1/devices/dev-bob-t${t}`, keys.alice);
    // alice's lookup reaches the backend while bob's is still unanswered.
    await until(() => lookups().length === 2);
    expect(lookups()).toEqual([`/v1/devices/dev-bob-t${t} bob`, `/v1/devices/dev-bob-t${t} alice`]);
    expect((await bob).status).toBe(200);
    expect((await alice).status).toBe(403);
  });
});

describe("one user's own requests still share one lookup", () => {
  test('20 concurrent first requests of one key: one lookup; the next request none', async () => {
    const t = fresh();
    backend.delayMs = 100;
    const all = await Promise.all(Array.from({ length: 20 }, () => get(`/v1/devices/dev-alice-t${t}`, keys.alice)));
    expect(all.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(lookups()).toEqual([`/v1/devices/dev-alice-t${t} alice`]);
    backend.received.length = 0;
    expect((await get(`/v1/devices/dev-alice-t${t}`, keys.alice)).status).toBe(200);
    expect(lookups()).toEqual([]);
  });

  test("the user's other scoped key (same referenceId) is answered from the user's cache", async () => {
    const t = fresh();
    expect((await get(`/v1/devices/dev-bob-t${t}`, keys.alice)).status).toBe(403);
    backend.received.length = 0;
    expect((await get(`/v1/devices/dev-bob-t${t}`, alice2)).status).toBe(403);
    expect(lookups()).toEqual([]);
  });
});

describe('request ids count nothing', () => {
  test("the ids one key sees are random, not a counter of everybody's requests", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      ids.push(String((await get('/v1/devices', keys.alice)).headers['x-request-id']));
      if (i % 3 === 0) await get('/v1/devices', keys.bob);
    }
    const prefix = ids[0]!.slice(0, 9);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{24}$/);
    expect(ids.every((id) => id.startsWith(prefix))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    // A counter would make them rise: 30 random values in order would be a 1 in 30! chance.
    const tails = ids.map((id) => id.slice(9));
    expect(tails.every((s, i) => i === 0 || s > tails[i - 1]!)).toBe(false);
  });
});
