// Invariant 11 (no starvation): clients that declare a body and stall hold their own
// socket, never a backend connection; a server key is answered at once beside them.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Backend, createKeySet, errorBody, type KeySet, keyHeader, type Sidecar, send, sleep, startBackend, startSidecar } from './harness.ts';
import { policyWithLimits } from './rate-limit-policy.ts';

let backend: Backend;
let keys: KeySet;

beforeAll(async () => {
  backend = await startBackend();
  keys = await createKeySet();
});
afterAll(async () => {
  await backend?.close();
});

/** Opens a connection and sends `head` plus the start of a body it never finishes. */
function stall(port: number, head: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => {
      sock.write(head);
      resolve(sock);
    });
    sock.on('error', reject);
  });
}

function connectUpload(key: string): string {
  return `POST /v1/connections HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${key}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"redirectUrl":`;
}

async function inFlight(opsPort: number): Promise<number> {
  const m = await send(opsPort, { path: '/metrics' });
  return Number(/^keygate_requests_in_flight (\d+)/m.exec(m.text)?.[1] ?? 0);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

describe('1,000 stalled uploads of the public connect key', () => {
  let sidecar: Sidecar;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    // A body deadline longer than the test, so every upload stays stalled while we measure.
    // Without the shipped rate limits, which would refuse all but 20 of these links from
    // one address at once (429): what is under test is the flow-control bound on its own.
    sidecar = await startSidecar({ upstream: backend.url, store: keys.store, policies: policyWithLimits(null), env: { KEYGATE_BODY_TIMEOUT: '30000' } });
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await sidecar?.stop();
  });

  test('a server-key request is answered within 100 ms (median), and no stalled body reached the backend', async () => {
    for (let i = 0; i < 1000; i += 100) {
      sockets.push(...(await Promise.all(Array.from({ length: 100 }, () => stall(sidecar.proxyPort, connectUpload(keys.connect.key))))));
    }
    for (let i = 0; i < 100 && (await inFlight(sidecar.opsPort)) < 1000; i++) await sleep(100);
    expect(await inFlight(sidecar.opsPort)).toBeGreaterThanOrEqual(1000);
    backend.reset();

    for (let i = 0; i < 3; i++) await send(sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(keys.server), timeoutMs: 10_000 });
    const ms: number[] = [];
    for (let i = 0; i < 15; i++) {
      const r = await send(sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(keys.server), timeoutMs: 10_000 });
      expect(r.status, r.text).toBe(200);
      ms.push(r.ms);
    }
    console.log(`[observation] server key beside 1,000 stalled connect uploads: median ${median(ms).toFixed(1)} ms, max ${Math.max(...ms).toFixed(1)} ms`);
    expect(median(ms)).toBeLessThan(100);
    // a public connect request with its body in full is answered too (by Keygate: this
    // connect key registered no redirect URL); nothing of it reaches the backend
    const ok = await send(sidecar.proxyPort, {
      method: 'POST',
      path: '/v1/connections',
      body: '{"redirectUrl":"https://app.example/done"}',
      headers: { ...keyHeader(keys.connect), 'content-type': 'application/json' },
      timeoutMs: 10_000,
    });
    expect(ok.status, ok.text).toBe(400);
    expect((ok.json as { error: { code: string } }).error.code).toBe('REDIRECT_NOT_ALLOWED');
    expect(backend.received.filter((r) => r.method === 'POST')).toHaveLength(0);
  }, 60_000);
});

describe('a stalled client gets 408 on its own deadline', () => {
  let sidecar: Sidecar;
  const BODY_TIMEOUT = 1000;

  beforeAll(async () => {
    sidecar = await startSidecar({ upstream: backend.url, store: keys.store, env: { KEYGATE_BODY_TIMEOUT: String(BODY_TIMEOUT) } });
  });
  afterAll(async () => {
    await sidecar?.stop();
  });

  /** Sends a head and part of a body, then waits for the answer and the close. */
  /** The reply, when the connection closed (`ms`) and when the reply's first byte came (`firstMs`). */
  function stalledReply(head: string): Promise<{ raw: string; ms: number; firstMs: number }> {
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let firstMs = NaN;
      const sock = connect(sidecar.proxyPort, '127.0.0.1', () => sock.write(head));
      const guard = setTimeout(() => sock.destroy(), 20_000);
      sock.on('data', (c: Buffer) => {
        if (chunks.length === 0) firstMs = performance.now() - t0;
        chunks.push(c);
      });
      sock.on('close', () => {
        clearTimeout(guard);
        resolve({ raw: Buffer.concat(chunks).toString('latin1'), ms: performance.now() - t0, firstMs });
      });
      sock.on('error', reject);
    });
  }

  function parsed(raw: string) {
    const [head = '', body = ''] = raw.split('\r\n\r\n');
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      json = undefined;
    }
    const headers: Record<string, string> = {};
    for (const l of head.split('\r\n').slice(1)) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
    return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), headers, json };
  }

  // A GET with a body may also be refused outright for a key with conditions; either way
  // the client is answered on its own, long before Node's 30 s request timeout.
  test.each([
    ['connect key, POST /v1/connections', () => connectUpload(keys.connect.key), [408]],
    ['scoped key, GET with a declared body', () => `GET /v1/devices HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${keys.alice.key}\r\nContent-Length: 64\r\n\r\n{"referenceId":`, [408, 400]],
    [
      'scoped key, command body',
      () => `POST /v1/commands/t/a HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${keys.alice.key}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"dev\r\n`,
      [408],
    ],
  ] as const)('%s → answered by --body-timeout (408 BODY_TIMEOUT), connection closed, backend untouched', async (_name, head, statuses) => {
    backend.reset();
    const { raw, ms, firstMs } = await stalledReply(head());
    const r = parsed(raw);
    console.log(`[observation] stalled body → ${r.status} after ${Math.round(firstMs)} ms, closed after ${Math.round(ms)} ms (--body-timeout ${BODY_TIMEOUT})`);
    expect(statuses, raw).toContain(r.status);
    // A 400 (a GET body refused before it is read) goes out at once on a kept-alive
    // connection, which Node then keeps while it discards the rest; a 408 closes it.
    expect(r.status === 400 ? firstMs : ms).toBeLessThan(BODY_TIMEOUT + 2000);
    if (r.status === 408) {
      expect(errorBody({ json: r.json, headers: r.headers }).error.code).toBe('BODY_TIMEOUT');
      expect(r.headers.connection).toBe('close');
      // its own deadline, not Node's request timeout
      expect(ms).toBeGreaterThanOrEqual(BODY_TIMEOUT - 50);
    }
    expect(backend.received.filter((x) => x.headers['x-keygate-purpose'] !== 'attribute-lookup')).toHaveLength(0);
  });

  test('a public body read before dispatch reaches the backend as the same bytes, with its exact length', async () => {
    backend.reset();
    const body = '{"deviceId":"dev-alice-1","input":{"heatSetpoint":21}}';
    const chunked = `${(30).toString(16)}\r\n${body.slice(0, 30)}\r\n${(body.length - 30).toString(16)}\r\n${body.slice(30)}\r\n0\r\n\r\n`;
    const { raw } = await stalledReply(
      `POST /v1/commands/thermostat/set HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTexture-Api-Key: ${keys.alice.key}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`,
    );
    expect(parsed(raw).status, raw).toBe(201);
    const got = backend.received.filter((x) => x.method === 'POST');
    expect(got).toHaveLength(1);
    expect(got[0]!.body.toString()).toBe(body);
    expect(got[0]!.headers['content-length']).toBe(String(body.length));
    expect(got[0]!.headers['transfer-encoding']).toBeUndefined();
  });
});
