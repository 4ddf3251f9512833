// Invariant 11 (no starvation) between keys of one type: one scoped key that stops reading
// its answers, or floods random ids, leaves another scoped key its backend connections and
// its ownership proofs; a stopped reader holds its connections only for
// --upstream-body-timeout.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createKey, createKeySet, errorBody, type KeySet, keyHeader, type Res, type Sidecar, send, sleep, startSidecar } from './harness.ts';
import { policyWithLimits } from './rate-limit-policy.ts';

const CHUNK = Buffer.alloc(64 * 1024, 'x');
/** How long the backend takes over a `…-slow` device's history: longer than the test looks. */
const SLOW_MS = 9000;

/**
 * A device backend: a device's owner is the middle of its id (`dev-alice-1` → alice); ids
 * of no user (`rnd-…`) are 404, and lookups wait `lookupDelayMs`. A device's history is a
 * short JSON list; for `…-slow` devices it comes after SLOW_MS; for `…-big` (32 MiB) and
 * `…-small` (1 MiB) devices it is a large answer written as fast as the reader takes it
 * (streamed to server keys; a scoped key's answer is checked, so it gets short ones).
 */
interface FairBackend {
  url: string;
  lookupDelayMs: number;
  /** History answers the backend began, and those whose connection Keygate closed before the end. */
  historyStarted: number;
  historyAborted: number;
  close(): Promise<void>;
}

async function fairBackend(): Promise<FairBackend> {
  const open = new Set<ServerResponse>();
  const state: FairBackend = { url: '', lookupDelayMs: 0, historyStarted: 0, historyAborted: 0, close: async () => {} };
  const json = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const owner = (id: string) => /^dev-([a-z]+)-/.exec(id)?.[1];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    open.add(res);
    res.on('close', () => open.delete(res));
    const u = new URL(req.url ?? '/', 'http://backend');
    const seg = u.pathname.split('/').filter(Boolean);
    if (seg[1] !== 'devices') return json(res, 404, { error: 'not found' });
    if (seg.length === 2) {
      const ref = u.searchParams.get('referenceId') ?? '';
      const data = [{ id: `dev-${ref}-1`, referenceId: ref }];
      return json(res, 200, { data, page: 1, perPage: 50, totalItems: 1, totalPages: 1 });
    }
    const id = seg[2]!;
    const ref = owner(id);
    if (seg.length === 3) {
      const answer = () => (ref === undefined ? json(res, 404, { error: 'no such device' }) : json(res, 200, { id, referenceId: ref }));
      if (req.headers['x-keygate-purpose'] === 'attribute-lookup' && state.lookupDelayMs > 0) setTimeout(answer, state.lookupDelayMs);
      else answer();
      return;
    }
    state.historyStarted++;
    const list = { data: [{ id: `history-${id}`, deviceId: id, kind: 'history' }], page: 1, perPage: 50, totalItems: 1, totalPages: 1 };
    if (id.endsWith('-slow')) {
      setTimeout(() => json(res, 200, list), SLOW_MS);
      return;
    }
    if (id.endsWith('-bigjson')) {
      // A long history about the device alone (about 7 MB): a scoped key's answer is checked and written whole.
      const data = Array.from({ length: 100_000 }, (_, i) => ({ id: `h${i}`, deviceId: id, kind: 'history' }));
      return json(res, 200, { data, page: 1, perPage: 100_000, totalItems: data.length, totalPages: 1 });
    }
    if (!id.endsWith('-big') && !id.endsWith('-small')) return json(res, 200, list);
    // Written as fast as the reader takes it.
    let left = id.endsWith('-small') ? 16 : 512; // chunks of 64 KiB: 1 MiB or 32 MiB
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(left * CHUNK.length) });
    res.on('close', () => {
      if (!res.writableFinished) state.historyAborted++;
    });
    const pump = () => {
      while (left > 0) {
        left--;
        if (left === 0) {
          res.end(CHUNK);
          return;
        }
        if (!res.write(CHUNK)) {
          res.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  state.close = async () => {
    for (const r of open) r.destroy();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return state;
}

/** A client that sends a request and never reads a byte of the answer. */
function stalledReader(port: number, path: string, key: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => {
      sock.pause();
      sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${key}\r\n\r\n`);
      resolve(sock);
    });
    sock.on('error', () => {});
    sock.once('error', reject);
  });
}

async function inUse(opsPort: number, cls: string): Promise<number> {
  const m = await send(opsPort, { path: '/metrics' });
  return Number(new RegExp(`^keygate_upstream_connections_in_use\\{class="${cls}"\\} (\\d+)`, 'm').exec(m.text)?.[1] ?? NaN);
}
const scopedInUse = (opsPort: number) => inUse(opsPort, 'scoped');

async function until(what: string, ok: () => Promise<boolean> | boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

let keys: KeySet;
let backend: FairBackend;
// Without the shipped rate limits: what is under test is flow control on its own.
const policies = policyWithLimits(null);

beforeAll(async () => {
  keys = await createKeySet();
  backend = await fairBackend();
}, 60_000);
afterAll(async () => {
  await backend?.close();
});

describe('one scoped key holds many slow requests', () => {
  const CONNECTIONS = 32; // the scoped max is 24 of them; one key holds at most 18 (24 − ⌈24 / 4⌉)
  const HELD = 30;
  let sidecar: Sidecar;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    sidecar = await startSidecar({ upstream: backend.url, store: keys.store, policies, env: { KEYGATE_UPSTREAM_CONNECTIONS: String(CONNECTIONS) } });
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await sidecar?.stop();
  });

  test('another user is still served: alice, with two keys, holds at most three quarters of the scoped max, the rest of hers waits and is 503', async () => {
    const started = backend.historyStarted;
    // One lookup proves dev-alice-slow (cached after); each history then holds its connection SLOW_MS.
    expect((await send(sidecar.proxyPort, { path: '/v1/devices/dev-alice-slow', headers: keyHeader(keys.alice) })).status).toBe(200);
    // Half from a second key of alice's (one per Connect link she finished): one user is one party.
    const alice2 = await createKey(keys.store, 'scoped', 'alice');
    for (let i = 0; i < HELD; i++) sockets.push(await stalledReader(sidecar.proxyPort, '/v1/devices/dev-alice-slow/history', (i % 2 === 0 ? keys.alice : alice2).key));
    await until('alice to hold her connections', async () => (await scopedInUse(sidecar.opsPort)) >= 18 && backend.historyStarted - started >= 18, 5000);
    await sleep(1200); // past the 1 s queue timeout: whatever of alice's waited has been answered
    const held = await scopedInUse(sidecar.opsPort);
    const began = backend.historyStarted - started;
    console.log(`[observation] ${HELD} slow requests of one user (two scoped keys): ${held} scoped backend connections held, ${began} dispatched`);
    expect(held).toBeLessThanOrEqual(18);
    expect(began).toBeLessThanOrEqual(18);

    // bob: a filtered list, a proven read (lookup + checked answer), a proven sub-resource
    const results: Res[] = [];
    for (const path of ['/v1/devices', '/v1/devices/dev-bob-1', '/v1/devices/dev-bob-1/history']) {
      results.push(await send(sidecar.proxyPort, { path, headers: keyHeader(keys.bob), timeoutMs: 10_000 }));
    }
    for (const r of results) expect(r.status, r.text.slice(0, 300)).toBe(200);

    // alice's own further requests wait for her own connections (the queue timeout) and are refused
    const more = await send(sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(keys.alice), timeoutMs: 10_000 });
    expect(more.status, more.text).toBe(503);
    expect(errorBody(more).error.code).toBe('UPSTREAM_SATURATED');
    expect(more.headers['retry-after']).toBe('1');
  }, 15_000);
});

describe('a reader that takes none of its streamed answer is cut at --upstream-body-timeout', () => {
  const BODY_TIMEOUT = 1500;
  let sidecar: Sidecar;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    sidecar = await startSidecar({ upstream: backend.url, store: keys.store, policies, env: { KEYGATE_UPSTREAM_BODY_TIMEOUT: String(BODY_TIMEOUT) } });
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await sidecar?.stop();
  });

  // Server keys' answers stream (a scoped key's are checked, read whole before they go out).
  test('the backend connections come back, the backend exchange is aborted, the access line says why', async () => {
    const path = '/v1/devices/dev-alice-big/history';
    const started = backend.historyStarted;
    const aborted = backend.historyAborted;
    for (let i = 0; i < 8; i++) sockets.push(await stalledReader(sidecar.proxyPort, path, keys.server.key));
    await until('8 streamed answers in flight', async () => (await inUse(sidecar.opsPort, 'server')) === 8, 5000);
    const t0 = Date.now();
    await until('the stalled answers to give back their connections', async () => (await inUse(sidecar.opsPort, 'server')) === 0, BODY_TIMEOUT + 5000);
    console.log(`[observation] 8 stalled readers: connections back ${Date.now() - t0} ms after all were in use (--upstream-body-timeout ${BODY_TIMEOUT})`);
    expect(backend.historyStarted - started).toBe(8);
    await until('the backend to see its answers aborted', () => backend.historyAborted - aborted === 8, 2000);
    const lines = () => sidecar.logs().filter((l) => l.msg === 'access' && l.path === path);
    await until('8 access lines', () => lines().length === 8, 2000);
    for (const l of lines()) {
      expect(l.status).toBe(200);
      expect(l.code).toBe('UPSTREAM_TIMEOUT');
      expect(String(l.detail)).toMatch(/took none of the answer/);
    }
    // another server key's request is served meanwhile and after
    const r = await send(sidecar.proxyPort, { path: '/v1/devices/dev-bob-1/history', headers: keyHeader(keys.server) });
    expect(r.status, r.text).toBe(200);
  }, 15_000);

  test('a checked answer written whole is not held for a client that takes none of it: its connection is closed', async () => {
    const clients = async (): Promise<number> => Number(/^keygate_client_connections (\d+)/m.exec((await send(sidecar.opsPort, { path: '/metrics' })).text)?.[1] ?? NaN);
    const before = await clients();
    const stalled: Socket[] = [];
    for (let i = 0; i < 4; i++) stalled.push(await stalledReader(sidecar.proxyPort, '/v1/devices/dev-alice-bigjson/history', keys.alice.key));
    sockets.push(...stalled);
    await until('4 more client connections', async () => (await clients()) >= before + 4, 5000);
    const t0 = Date.now();
    await until('the stalled clients to be cut', async () => (await clients()) <= before, 2 * BODY_TIMEOUT + 5000);
    console.log(`[observation] 4 stalled readers of a 7 MB checked answer: cut ${Date.now() - t0} ms after they connected (--upstream-body-timeout ${BODY_TIMEOUT})`);
    const r = await send(sidecar.proxyPort, { path: '/v1/devices/dev-alice-bigjson/history', headers: keyHeader(keys.alice) });
    expect(r.status).toBe(200);
    expect((JSON.parse(r.text) as { data: unknown[] }).data).toHaveLength(100_000);
  }, 20_000);

  test('a slow reader that keeps taking its answer gets all of it', async () => {
    // Reads a piece, then nothing for 300 ms, again and again: paused more often than not, never for the bound.
    const body = await new Promise<number>((resolve, reject) => {
      let bytes = 0;
      const sock = connect(sidecar.proxyPort, '127.0.0.1', () =>
        sock.write(`GET /v1/devices/dev-alice-small/history HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTexture-Api-Key: ${keys.server.key}\r\n\r\n`),
      );
      sock.on('data', (c: Buffer) => {
        bytes += c.length;
        sock.pause();
        setTimeout(() => sock.resume(), 300);
      });
      sock.on('end', () => resolve(bytes));
      sock.on('error', reject);
    });
    expect(body).toBeGreaterThan(16 * CHUNK.length);
  }, 15_000);
});

describe('stalled readers of checked answers hold at most --held-answer-budget together', () => {
  const BUDGET = 4 * 1024 * 1024;
  let sidecar: Sidecar;
  const sockets: Socket[] = [];
  const metric = async (name: string): Promise<number> => {
    const text = (await send(sidecar.opsPort, { path: '/metrics' })).text;
    return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
  };

  beforeAll(async () => {
    // The stall bound far beyond the test: only the byte budget can free these readers in time.
    sidecar = await startSidecar({ upstream: backend.url, store: keys.store, policies, env: { KEYGATE_UPSTREAM_BODY_TIMEOUT: '60000', KEYGATE_HELD_ANSWER_BUDGET: String(BUDGET) } });
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await sidecar?.stop();
  });

  test('ten readers that take none of a 7 MB answer: the ones holding most are cut at once, a reader that takes its answer gets all of it', async () => {
    const before = await metric('keygate_client_connections');
    for (let i = 0; i < 10; i++) sockets.push(await stalledReader(sidecar.proxyPort, '/v1/devices/dev-alice-bigjson/history', keys.alice.key));
    // Each answer is written once its check is done; wait until all ten were written.
    await until('ten answers written', async () => (await metric('keygate_held_answer_bytes')) > 0 && (await metric('keygate_requests_in_flight')) === 0, 20_000);
    const held = await metric('keygate_held_answer_bytes');
    const cut = Number(/^keygate_client_connections_cut_total\{reason="budget"\} (\d+)/m.exec((await send(sidecar.opsPort, { path: '/metrics' })).text)?.[1] ?? 0);
    const open = (await metric('keygate_client_connections')) - before;
    console.log(`[observation] 10 stalled readers of a 7 MB checked answer at --held-answer-budget ${BUDGET}: ${held} bytes held, ${cut} cut for the budget, ${open} still open`);
    // What Keygate holds after the newest answer: the budget, or the newest answer alone.
    expect(held).toBeLessThanOrEqual(BUDGET + 7.5 * 1024 * 1024);
    expect(cut).toBeGreaterThan(0);
    expect(open).toBeLessThan(10);
    const r = await send(sidecar.proxyPort, { path: '/v1/devices/dev-alice-bigjson/history', headers: keyHeader(keys.alice), timeoutMs: 20_000 });
    expect(r.status).toBe(200);
    expect((JSON.parse(r.text) as { data: unknown[] }).data).toHaveLength(100_000);
  }, 40_000);

  test('a client that pipelines twenty requests and reads none gets one answer fetched, not twenty held', async () => {
    for (const s of sockets.splice(0)) s.destroy();
    const started = backend.historyStarted;
    const one = `GET /v1/devices/dev-alice-bigjson/history HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${keys.alice.key}\r\n\r\n`;
    const sock = await new Promise<Socket>((resolve, reject) => {
      const c = connect(sidecar.proxyPort, '127.0.0.1', () => {
        c.pause();
        c.write(one.repeat(20));
        resolve(c);
      });
      c.on('error', reject);
    });
    sockets.push(sock);
    await sleep(3000);
    const fetched = backend.historyStarted - started;
    console.log(`[observation] 20 pipelined requests for a 7 MB answer, none read: the backend was asked ${fetched} times in 3 s`);
    // The one on the socket (and, at most, the next once the kernel took the first).
    expect(fetched).toBeGreaterThanOrEqual(1);
    expect(fetched).toBeLessThanOrEqual(2);
    expect(await metric('keygate_held_answer_bytes')).toBeLessThanOrEqual(BUDGET + 7.5 * 1024 * 1024);
  }, 20_000);
});

test('--max-upstream-body: a checked answer larger than it is 502 UPSTREAM_BAD_RESPONSE, a smaller one passes', async () => {
  const small = await startSidecar({ upstream: backend.url, store: keys.store, policies, env: { KEYGATE_MAX_UPSTREAM_BODY: String(1024 * 1024) } });
  try {
    const big = await send(small.proxyPort, { path: '/v1/devices/dev-alice-bigjson/history', headers: keyHeader(keys.alice), timeoutMs: 20_000 });
    expect(big.status, big.text.slice(0, 200)).toBe(502);
    expect(errorBody(big).error.code).toBe('UPSTREAM_BAD_RESPONSE');
    const ok = await send(small.proxyPort, { path: '/v1/devices/dev-alice-1/history', headers: keyHeader(keys.alice) });
    expect(ok.status, ok.text).toBe(200);
  } finally {
    await small.stop();
  }
}, 30_000);

describe("one scoped key floods random ids: other keys' ownership proofs still get lookups", () => {
  let sidecar: Sidecar;

  beforeAll(async () => {
    sidecar = await startSidecar({ upstream: backend.url, store: keys.store, policies });
    backend.lookupDelayMs = 300;
  });
  afterAll(async () => {
    backend.lookupDelayMs = 0;
    await sidecar?.stop();
  });

  test('bob reads his device beside 400 concurrent lookups of alice; her excess waits behind his and is 503', async () => {
    const flood = Array.from({ length: 400 }, (_, i) =>
      send(sidecar.proxyPort, { path: `/v1/devices/rnd-${i}-${Math.random().toString(36).slice(2)}`, headers: keyHeader(keys.alice), timeoutMs: 20_000 }),
    );
    await sleep(200);
    const bob = await Promise.all([
      send(sidecar.proxyPort, { path: '/v1/devices/dev-bob-2', headers: keyHeader(keys.bob), timeoutMs: 10_000 }),
      send(sidecar.proxyPort, { path: '/v1/devices/dev-bob-3/history', headers: keyHeader(keys.bob), timeoutMs: 10_000 }),
    ]);
    const alice = await Promise.all(flood);
    const statuses = new Map<number, number>();
    for (const r of alice) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    console.log(`[observation] bob beside alice's flood: ${bob.map((r) => `${r.status} in ${Math.round(r.ms)} ms`).join(', ')}; alice: ${JSON.stringify(Object.fromEntries(statuses))}`);
    for (const r of bob) expect(r.status, r.text.slice(0, 300)).toBe(200);
    // unknown ids are 403 (looked up), the excess 503 UPSTREAM_SATURATED after the queue timeout
    for (const r of alice) {
      expect([403, 503], r.text).toContain(r.status);
      if (r.status === 503) expect(errorBody(r).error.code).toBe('UPSTREAM_SATURATED');
    }
    // at most 24 (32 − ⌈32 / 4⌉) of hers in flight, the rest waiting past the 1 s queue timeout
    expect(statuses.get(503) ?? 0).toBeGreaterThan(300);
  }, 15_000);
});
