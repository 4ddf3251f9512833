// The request handler's edge cases, in process (test/helpers/in-process.ts): what the
// client gets when the backend fails mid-answer, when a refusal comes while the body is
// still arriving, on HEAD to a checked route, and when the client goes away — and that
// afterwards nothing is held (backend connections, queue places, body memory, in flight).
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { send } from '../helpers/http.ts';
import { type InProcessKeygate, startInProcess } from '../helpers/in-process.ts';

let kg: InProcessKeygate | undefined;
let upstream: Server | undefined;
afterEach(async () => {
  await kg?.close();
  kg = undefined;
  upstream?.closeAllConnections();
  upstream?.close();
  upstream = undefined;
});

/** A backend of the test's own on port 0. */
async function backend(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  upstream = createServer(handler);
  await new Promise<void>((r) => upstream!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
}

interface Received {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
  /** The response ended cleanly (complete framing), rather than being cut. */
  complete: boolean;
}

/** A request whose outcome is reported whether the response ends or is cut. */
function get(base: string, method: string, path: string, headers: Record<string, string>): Promise<Received> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, method, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => (body += c));
      const done = (): void => resolve({ status: res.statusCode!, headers: res.headers, body, complete: res.complete });
      res.on('end', done);
      res.on('error', done);
      res.on('aborted', done);
    });
    req.on('error', reject);
    req.end();
  });
}

function rawSocket(base: string): Promise<Socket> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const s = connect(Number(port), hostname, () => resolve(s));
    s.on('error', reject);
  });
}

/** Text read from a socket until `until` matches it (or the socket ends). */
function readUntil(s: Socket, until: RegExp): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (c: Buffer): void => {
      text += c.toString('latin1');
      if (until.test(text)) finish();
    };
    const finish = (): void => {
      s.off('data', onData);
      s.off('end', finish);
      s.off('close', finish);
      resolve(text);
    };
    s.on('data', onData);
    s.on('end', finish);
    s.on('close', finish);
  });
}

const statusOf = (raw: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
const until = async (what: string, check: () => boolean): Promise<void> => {
  const t0 = Date.now();
  while (!check()) {
    if (Date.now() - t0 > 10_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('an upstream error after the headers were sent', () => {
  it('a streamed answer cut mid-body reaches the client cut, never as a clean shorter 200', async () => {
    const url = await backend((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('{"data":"' + 'x'.repeat(90));
      setTimeout(() => res.socket!.destroy(), 20);
    });
    kg = await startInProcess({ upstream: url });
    const r = await get(kg.url, 'GET', '/v1/sites', { 'texture-api-key': kg.keys.server });
    expect(r.status).toBe(200);
    expect(r.complete).toBe(false);
    expect(r.body.length).toBeLessThan(1000);
    await kg.settled();
    const line = kg.access().at(-1)!;
    expect(line).toMatchObject({ status: 200, decision: 'allow', code: 'UPSTREAM_UNREACHABLE' });
    expect(String(line.detail)).toMatch(/^cut after the status line: /);
    expect((await kg.running.metrics.upstreamErrors.get()).values).toEqual([{ labels: { code: 'UPSTREAM_UNREACHABLE' }, value: 1 }]);
  });

  it('a chunked answer cut mid-body never gets its last chunk', async () => {
    const url = await backend((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"data":[1,2,');
      setTimeout(() => res.socket!.destroy(), 20);
    });
    kg = await startInProcess({ upstream: url });
    const s = await rawSocket(kg.url);
    s.write(`GET /v1/sites HTTP/1.1\r\nhost: x\r\ntexture-api-key: ${kg.keys.server}\r\n\r\n`);
    const raw = await readUntil(s, /\r\n0\r\n\r\n$/);
    expect(statusOf(raw)).toBe(200);
    expect(raw).toMatch(/transfer-encoding: chunked/i);
    expect(raw).not.toMatch(/\r\n0\r\n\r\n$/);
    expect(s.readableEnded || s.destroyed).toBe(true);
    await kg.settled();
  });

  it('a checked answer cut mid-body is a 502 (nothing was sent yet)', async () => {
    const url = await backend((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '500' });
      res.write('{"data":[{"id":"d1","referenceId":"alice"}');
      setTimeout(() => res.socket!.destroy(), 20);
    });
    kg = await startInProcess({ upstream: url });
    const r = await send(kg.url, 'GET', '/v1/devices', { headers: { 'texture-api-key': kg.keys.alice } });
    expect(r.status).toBe(502);
    expect(r.json.error.code).toBe('UPSTREAM_UNREACHABLE');
    expect(r.text).not.toContain('alice');
    await kg.settled();
  });
});

describe('a refusal while the body is still arriving', () => {
  const partial = (key: string, path: string, extra = ''): string =>
    `PUT ${path} HTTP/1.1\r\nhost: x\r\ntexture-api-key: ${key}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n${extra}\r\n{"tags":`;

  it('on a kept-alive connection the refusal goes out at once, and the connection serves the next request', async () => {
    kg = await startInProcess();
    const s = await rawSocket(kg.url);
    s.write(partial(kg.keys.alice, '/v1/devices/dev_alice_1/tags'));
    const refused = await readUntil(s, /\r\n\r\n\{.*\}$/s);
    expect(statusOf(refused)).toBe(403);
    expect(refused).toContain('ACTION_NOT_ALLOWED');
    // The rest of the refused body, then a request on the same connection.
    s.write('["x"]' + ' '.repeat(100 - 8 - 5));
    s.write(`GET /v1/devices HTTP/1.1\r\nhost: x\r\ntexture-api-key: ${kg.keys.alice}\r\n\r\n`);
    const next = await readUntil(s, /\r\n\r\n\{.*\}$/s);
    expect(statusOf(next)).toBe(200);
    s.destroy();
    expect(kg.backend!.received.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /v1/devices']);
    await kg.settled();
  });

  it('on a connection that closes after the answer, the refusal waits for the body, so the client reads it instead of a reset', async () => {
    kg = await startInProcess();
    const s = await rawSocket(kg.url);
    let answered = '';
    s.on('data', (c: Buffer) => (answered += c.toString('latin1')));
    s.write(partial(kg.keys.alice, '/v1/devices/dev_alice_1/tags', 'connection: close\r\n'));
    await new Promise((r) => setTimeout(r, 100));
    expect(answered).toBe('');
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    s.write('["x"]' + ' '.repeat(100 - 8 - 5));
    await closed;
    expect(statusOf(answered)).toBe(403);
    expect(answered).toMatch(/connection: close/i);
    expect(kg.backend!.received).toEqual([]);
    await kg.settled();
  });

  it('a chunked body past --max-body is refused 413 while it is still being sent; its body memory is given back', async () => {
    kg = await startInProcess({ args: ['--max-body', '1024'] });
    const s = await rawSocket(kg.url);
    s.write(`POST /v1/commands/thermostat/set HTTP/1.1\r\nhost: x\r\ntexture-api-key: ${kg.keys.alice}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n`);
    const chunk = 'x'.repeat(512);
    for (let i = 0; i < 3; i++) s.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    const refused = await readUntil(s, /\r\n\r\n\{.*\}$/s);
    expect(statusOf(refused)).toBe(413);
    expect(refused).toContain('BODY_TOO_LARGE');
    s.destroy();
    expect(kg.backend!.received).toEqual([]);
    await kg.settled();
  });

  it('a body that stops arriving is refused 408 at --body-timeout, and the connection is closed', async () => {
    kg = await startInProcess({ args: ['--body-timeout', '200'] });
    const s = await rawSocket(kg.url);
    s.write(`POST /v1/commands/thermostat/set HTTP/1.1\r\nhost: x\r\ntexture-api-key: ${kg.keys.alice}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"deviceId":`);
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    const refused = await readUntil(s, /\r\n\r\n\{.*\}$/s);
    expect(statusOf(refused)).toBe(408);
    expect(refused).toMatch(/connection: close/i);
    await closed;
    expect(kg.backend!.received).toEqual([]);
    await kg.settled();
  });
});

describe('HEAD on a checked route', () => {
  it('answers the headers a GET would get, without a body; the backend is asked with GET', async () => {
    kg = await startInProcess();
    const headers = { 'texture-api-key': kg.keys.alice };
    const got = await get(kg.url, 'GET', '/v1/devices', headers);
    const head = await get(kg.url, 'HEAD', '/v1/devices', headers);
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(head.complete).toBe(true);
    expect(head.headers['content-length']).toBe(String(Buffer.byteLength(got.body)));
    expect(head.headers['content-type']).toBe(got.headers['content-type']);
    expect(kg.backend!.received.map((r) => `${r.method} ${r.url}`)).toEqual(['GET /v1/devices?referenceId=alice', 'GET /v1/devices?referenceId=alice']);
  });

  it("with a backend that ignores the filter, HEAD's length is that of the checked list, not of the backend's (no count leaks)", async () => {
    kg = await startInProcess();
    kg.backend!.behaviour.ignoreFilter = true;
    const headers = { 'texture-api-key': kg.keys.alice };
    const got = await get(kg.url, 'GET', '/v1/devices', headers);
    expect(JSON.parse(got.body).data.every((d: { referenceId: string }) => d.referenceId === 'alice')).toBe(true);
    const head = await get(kg.url, 'HEAD', '/v1/devices', headers);
    expect(head.headers['content-length']).toBe(String(Buffer.byteLength(got.body)));
    expect(head.headers['x-total-count']).toBeUndefined();
    expect(kg.access().at(-1)).toMatchObject({ method: 'HEAD', status: 200, dropped: 2 });
  });

  it('a HEAD for a resource the key may not see is refused like the GET, with no body', async () => {
    kg = await startInProcess();
    kg.backend!.commands.set('cmd_b', { id: 'cmd_b', deviceId: 'dev_bob_1', deviceType: 'thermostat', action: 'set', input: null, status: 'pending', createdAt: '2026-01-05T09:00:00.000Z' });
    const head = await get(kg.url, 'HEAD', '/v1/commands/cmd_b', { 'texture-api-key': kg.keys.alice });
    expect(head.status).toBe(403);
    expect(head.body).toBe('');
    expect(kg.access().at(-1)).toMatchObject({ method: 'HEAD', status: 403, code: 'RESOURCE_NOT_ALLOWED' });
  });
});

describe('a client that goes away', () => {
  it('mid-answer on a streamed route: the backend request is aborted, nothing is held, one access line', async () => {
    let backendClosed = false;
    const url = await backend((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"data":[');
      res.on('close', () => (backendClosed = true));
    });
    kg = await startInProcess({ upstream: url });
    const s = await rawSocket(kg.url);
    s.write(`GET /v1/sites HTTP/1.1\r\nhost: x\r\ntexture-api-key: ${kg.keys.server}\r\n\r\n`);
    await readUntil(s, /\{"data":\[/);
    expect(kg.held().active).toBe(1);
    s.destroy();
    await until('the backend request aborted', () => backendClosed);
    await kg.settled();
    expect(kg.access()).toHaveLength(1);
    expect(kg.access()[0]).toMatchObject({ status: 200, decision: 'allow' });
    expect((await kg.running.metrics.upstreamErrors.get()).values).toEqual([]);
  });

  /** A client that goes away after Keygate has asked the backend and before it answers: the backend request is aborted. */
  async function closeBeforeTheAnswer(path: string, key: (keys: { server: string; alice: string }) => string): Promise<InProcessKeygate> {
    let backendClosed = false;
    let asked = false;
    const url = await backend((_req, res) => {
      asked = true;
      res.on('close', () => (backendClosed = true));
    });
    const started = await startInProcess({ upstream: url });
    kg = started;
    const s = await rawSocket(started.url);
    s.write(`GET ${path} HTTP/1.1\r\nhost: x\r\ntexture-api-key: ${key(started.keys)}\r\n\r\n`);
    await until('the backend asked', () => asked);
    s.destroy();
    await until('the backend request aborted', () => backendClosed);
    await started.settled();
    return started;
  }

  it('while a checked answer is awaited: the backend request is aborted too, nothing is held', async () => {
    const gone = await closeBeforeTheAnswer('/v1/devices', (k) => k.alice);
    expect(gone.access()).toHaveLength(1);
    expect(gone.access()[0]).toMatchObject({ detail: 'client closed the connection' });
    // The client's doing, not the backend's.
    expect((await gone.running.metrics.upstreamErrors.get()).values).toEqual([]);
  });

  it('before the backend answers on a streamed route: aborted, and not counted as a backend failure', async () => {
    const gone = await closeBeforeTheAnswer('/v1/sites', (k) => k.server);
    expect(gone.access()).toHaveLength(1);
    expect((await gone.running.metrics.upstreamErrors.get()).values).toEqual([]);
  });

  it('while queued for a backend connection: its place is given up at once', async () => {
    let answers: Array<() => void> = [];
    const url = await backend((req, res) => {
      req.resume();
      answers.push(() => res.end('{}'));
    });
    kg = await startInProcess({ upstream: url, args: ['--upstream-connections', '8', '--upstream-share', 'server=1:1', '--upstream-queue-timeout', '30000'] });
    const first = get(kg.url, 'GET', '/v1/sites', { 'texture-api-key': kg.keys.server });
    await until('the first request at the backend', () => answers.length === 1);
    const s = await rawSocket(kg.url);
    s.write(`GET /v1/sites HTTP/1.1\r\nhost: x\r\ntexture-api-key: ${kg.keys.server}\r\n\r\n`);
    await until('the second request queued', () => kg!.held().queued === 1);
    s.destroy();
    await until('the queue place given up', () => kg!.held().queued === 0);
    expect(kg.held().active).toBe(1);
    expect(kg.access().at(-1)).toMatchObject({ code: 'UPSTREAM_SATURATED', detail: 'client closed the connection while waiting for a backend connection' });
    answers[0]!();
    answers = [];
    expect((await first).status).toBe(200);
    await kg.settled();
  });

  it('while its body is being read: the body memory is given back at once, not at --body-timeout', async () => {
    kg = await startInProcess({ args: ['--body-timeout', '30000'] });
    const s = await rawSocket(kg.url);
    s.write(`POST /v1/commands/thermostat/set HTTP/1.1\r\nhost: x\r\ntexture-api-key: ${kg.keys.alice}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"deviceId":`);
    await until('the body reserved', () => kg!.held().bodyBytes === 100);
    s.destroy();
    await kg.settled();
    expect(kg.backend!.received).toEqual([]);
    expect(kg.access()).toHaveLength(1);
  });
});

describe("the backend's other answers", () => {
  it('informational answers (103 Early Hints) are not relayed; the final answer is, on streamed and checked routes', async () => {
    const url = await backend((req, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload' });
      const body = req.url!.startsWith('/v1/devices') ? '{"data":[{"id":"d1","referenceId":"alice"}]}' : '{"data":[]}';
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
      res.end(body);
    });
    kg = await startInProcess({ upstream: url });
    const streamed = await get(kg.url, 'GET', '/v1/sites', { 'texture-api-key': kg.keys.server });
    expect([streamed.status, streamed.body, streamed.complete]).toEqual([200, '{"data":[]}', true]);
    const checked = await get(kg.url, 'GET', '/v1/devices', { 'texture-api-key': kg.keys.alice });
    expect([checked.status, JSON.parse(checked.body).data, checked.complete]).toEqual([200, [{ id: 'd1', referenceId: 'alice' }], true]);
    await kg.settled();
  });

  it.each([404, 500])('a %i on a checked route keeps its status but not its body (it may hold what the key may not see)', async (status) => {
    const url = await backend((_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end('{"error":"no such thing","data":[{"id":"d2","referenceId":"bob"}]}');
    });
    kg = await startInProcess({ upstream: url });
    const r = await send(kg.url, 'GET', '/v1/devices', { headers: { 'texture-api-key': kg.keys.alice } });
    expect(r.status).toBe(status);
    expect(r.json.error.code).toBe('UPSTREAM_ERROR');
    // The body says the status sent, not the catalogue's (the memoised body prefix is only for catalogue statuses).
    expect(r.json.error.status).toBe(status);
    expect(r.text).not.toContain('bob');
    expect(kg.access().at(-1)).toMatchObject({ status, code: 'UPSTREAM_ERROR' });
    await kg.settled();
  });
});
