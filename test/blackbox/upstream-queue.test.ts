// Invariant 11: the wait for a backend connection is Keygate's own, bounded in length and
// in time; the upstream deadline counts from dispatch; one key type's saturated share
// leaves the others theirs.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createKeySet, errorBody, type KeySet, keyHeader, type Res, type Sidecar, send, startSidecar } from './harness.ts';

const UPSTREAM_TIMEOUT = 2000;
const QUEUE_TIMEOUT = 1000;
const QUEUE = 64;

/** A backend whose /v1/sites never answers; it records when each request arrived, by Keygate's request id. */
interface HangingBackend {
  url: string;
  arrivals: Map<string, number>;
  close(): Promise<void>;
}

async function hangingBackend(): Promise<HangingBackend> {
  const arrivals = new Map<string, number>();
  const pending = new Set<ServerResponse>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    arrivals.set(String(req.headers['x-request-id']), Date.now());
    req.resume();
    if (req.url?.startsWith('/v1/sites')) {
      pending.add(res);
      res.on('close', () => pending.delete(res));
      return;
    }
    const body = JSON.stringify({ data: [{ id: 'dev-alice-1', referenceId: 'alice' }], page: 1, perPage: 50, totalItems: 1, totalPages: 1 });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    arrivals,
    async close() {
      for (const r of pending) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

let backend: HangingBackend;
let keys: KeySet;
let sidecar: Sidecar;

beforeAll(async () => {
  backend = await hangingBackend();
  keys = await createKeySet();
  sidecar = await startSidecar({
    upstream: backend.url,
    store: keys.store,
    env: { KEYGATE_UPSTREAM_TIMEOUT: String(UPSTREAM_TIMEOUT), KEYGATE_UPSTREAM_QUEUE: String(QUEUE), KEYGATE_UPSTREAM_QUEUE_TIMEOUT: String(QUEUE_TIMEOUT) },
  });
});
afterAll(async () => {
  await sidecar?.stop();
  await backend?.close();
});

describe('400 server-key requests to a route that never answers', () => {
  interface Outcome extends Res {
    sentAt: number;
    doneAt: number;
  }
  let outcomes: Outcome[] = [];
  let scopedDuring: Res;

  beforeAll(async () => {
    const all = Array.from({ length: 400 }, async (): Promise<Outcome> => {
      const sentAt = Date.now();
      const r = await send(sidecar.proxyPort, { path: '/v1/sites', headers: keyHeader(keys.server), timeoutMs: 20_000 });
      return { ...r, sentAt, doneAt: Date.now() };
    });
    await new Promise((r) => setTimeout(r, 300));
    // Another key type while server keys hold their whole share and queue.
    scopedDuring = await send(sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(keys.alice), timeoutMs: 20_000 });
    outcomes = await Promise.all(all);
  }, 60_000);

  test('each answer is 504 (dispatched) or 503 UPSTREAM_SATURATED with Retry-After (not dispatched)', () => {
    for (const o of outcomes) {
      expect([503, 504], o.text).toContain(o.status);
      const code = errorBody(o).error.code;
      if (o.status === 503) {
        expect(code).toBe('UPSTREAM_SATURATED');
        expect(o.headers['retry-after']).toBe('1');
      } else {
        expect(code).toBe('UPSTREAM_TIMEOUT');
      }
    }
    expect(outcomes.filter((o) => o.status === 504).length).toBeGreaterThan(0);
    expect(outcomes.filter((o) => o.status === 503).length).toBeGreaterThan(0);
  });

  test('the upstream deadline counts from dispatch: every 504 comes --upstream-timeout after the backend got the request', () => {
    const late: number[] = [];
    for (const o of outcomes.filter((x) => x.status === 504)) {
      const arrived = backend.arrivals.get(String(o.headers['x-request-id']));
      expect(arrived, 'a 504 for a request the backend never saw').toBeDefined();
      late.push(o.doneAt - arrived!);
    }
    console.log(`[observation] 504 after dispatch: ${Math.min(...late)}–${Math.max(...late)} ms (--upstream-timeout ${UPSTREAM_TIMEOUT})`);
    for (const ms of late) {
      expect(ms).toBeGreaterThanOrEqual(UPSTREAM_TIMEOUT - 100);
      expect(ms).toBeLessThan(UPSTREAM_TIMEOUT + 1000);
    }
  });

  /** Keygate's own time for each answer (its access log), by request id: the client's clock also counts the test's load. */
  async function keygateLatencies(): Promise<Map<string, number>> {
    const access = () => sidecar.logs().filter((l) => l.msg === 'access');
    for (let i = 0; i < 50 && access().length < outcomes.length + 1; i++) await new Promise((r) => setTimeout(r, 100));
    return new Map(access().map((l) => [String(l.requestId), Number(l.latencyMs)]));
  }

  test('no request waits longer than the queue timeout plus the upstream timeout; a full queue answers at once', async () => {
    const latency = await keygateLatencies();
    const ms = (o: Outcome) => latency.get(String(o.headers['x-request-id'])) ?? Infinity;
    const refused = outcomes.filter((o) => o.status === 503);
    const atOnce = refused.filter((o) => ms(o) < QUEUE_TIMEOUT / 2);
    const queued = refused.filter((o) => ms(o) >= QUEUE_TIMEOUT / 2);
    const longest = Math.max(...outcomes.map(ms));
    console.log(
      `[observation] longest in Keygate ${Math.round(longest)} ms (client-side ${Math.max(...outcomes.map((o) => o.doneAt - o.sentAt))} ms); ` +
        `503 at once: ${atOnce.length} (longest ${Math.round(Math.max(...atOnce.map(ms)))} ms), after queueing: ${queued.length} (${Math.round(Math.min(...queued.map(ms)))}–${Math.round(Math.max(...queued.map(ms)))} ms); ` +
        `504: ${outcomes.filter((o) => o.status === 504).length}`,
    );
    expect(longest).toBeLessThan(QUEUE_TIMEOUT + UPSTREAM_TIMEOUT + 1000);
    // At most the server share (≤ 128) is dispatched and QUEUE wait: the rest is refused at once.
    expect(atOnce.length).toBeGreaterThanOrEqual(400 - 128 - QUEUE);
    // Those that waited were refused at the queue timeout, not after a multiple of anything.
    for (const o of queued) {
      expect(ms(o)).toBeGreaterThanOrEqual(QUEUE_TIMEOUT - 50);
      expect(ms(o)).toBeLessThan(QUEUE_TIMEOUT + 1000);
    }
  });

  test('another key type is served meanwhile from its own share, without waiting', async () => {
    expect(scopedDuring.status, scopedDuring.text).toBe(200);
    const ms = (await keygateLatencies()).get(String(scopedDuring.headers['x-request-id'])) ?? Infinity;
    console.log(`[observation] scoped list while server keys were saturated: ${Math.round(ms)} ms in Keygate (${Math.round(scopedDuring.ms)} ms client-side)`);
    expect(ms).toBeLessThan(QUEUE_TIMEOUT / 2);
  });

  test('once the hung requests are gone, the server share is whole again', async () => {
    const r = await send(sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(keys.server) });
    expect(r.status, r.text).toBe(200);
    const m = await send(sidecar.opsPort, { path: '/metrics' });
    expect(m.text).toMatch(/^keygate_upstream_connections_in_use\{class="server"\} 0$/m);
    expect(m.text).toMatch(/^keygate_upstream_queued\{class="server"\} 0$/m);
  });
});
