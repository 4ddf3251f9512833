// Smuggling, connection reuse, odd methods, huge headers, odd owner ids.
import { describe, expect, test } from 'vitest';
import { keyHeader, rawSend, send, useStack, writes } from './harness.ts';

const stack = useStack();

const statuses = (raw: string) => [...raw.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));

describe('request smuggling / framing', () => {
  test('Content-Length + Transfer-Encoding together → 400, smuggled request never forwarded', async () => {
    const smuggled = `GET /v1/sites HTTP/1.1\r\nHost: x\r\n\r\n`;
    const body = `0\r\n\r\n${smuggled}`;
    const payload =
      `POST /v1/commands/t/a HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${stack.keys.alice.key}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n\r\n${body}`;
    const r = await rawSend(stack.sidecar.proxyPort, payload);
    expect(r.status, r.raw).toBe(400);
    expect(stack.backend.received.map((x) => x.url)).toEqual([]);
  });

  test.each([
    'Transfer-Encoding: xchunked',
    'Transfer-Encoding: chunked, identity',
    'Transfer-Encoding: identity, chunked',
    'Transfer-Encoding : chunked',
    'Transfer-Encoding:\tchunked',
    'Transfer-Encoding: chunked\r\nTransfer-Encoding: identity',
  ])('obfuscated TE (%s) + CL → refused, nothing forwarded', async (te) => {
    const body = '{"deviceId":"dev-alice-1"}';
    const payload =
      `POST /v1/commands/t/a HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${stack.keys.alice.key}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${body.length}\r\n${te}\r\nConnection: close\r\n\r\n${body}`;
    const r = await rawSend(stack.sidecar.proxyPort, payload);
    expect(
      statuses(r.raw).every((s) => s >= 400),
      r.raw,
    ).toBe(true);
    expect(writes(stack.backend)).toHaveLength(0);
  });

  test('two different Content-Length headers → 400', async () => {
    const body = '{"deviceId":"dev-alice-1"}';
    const payload =
      `POST /v1/commands/t/a HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${stack.keys.alice.key}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${body.length}\r\nContent-Length: 5\r\nConnection: close\r\n\r\n${body}`;
    const r = await rawSend(stack.sidecar.proxyPort, payload);
    expect(r.status, r.raw).toBe(400);
    expect(writes(stack.backend)).toHaveLength(0);
  });

  test('pipelined second request without a key on the same connection → 401, not forwarded', async () => {
    const payload = `GET /v1/devices HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${stack.keys.alice.key}\r\n\r\n` + `GET /v1/sites HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;
    const r = await rawSend(stack.sidecar.proxyPort, payload);
    expect(statuses(r.raw), r.raw).toEqual([200, 401]);
    expect(stack.backend.received.map((x) => x.url)).toEqual(['/v1/devices?referenceId=alice']);
  });

  test('pipelined requests are answered in order up to 32 waiting; one more closes the connection, nothing past it reaches the backend', async () => {
    const one = (i: number) => `GET /v1/devices?n=${i} HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${stack.keys.alice.key}\r\n\r\n`;
    const ok = await rawSend(
      stack.sidecar.proxyPort,
      Array.from({ length: 20 }, (_, i) => one(i)).join('') + `GET /v1/devices HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${stack.keys.alice.key}\r\nConnection: close\r\n\r\n`,
    );
    expect(statuses(ok.raw)).toEqual(Array.from({ length: 21 }, () => 200));
    stack.backend.reset();
    // 400 at once: Node parses them all; Keygate keeps at most 32 waiting behind the one in progress.
    const flood = await rawSend(stack.sidecar.proxyPort, Array.from({ length: 400 }, (_, i) => one(i)).join(''));
    const answered = statuses(flood.raw).length;
    console.log(`[observation] 400 pipelined requests at once: ${answered} answered, the backend asked ${stack.backend.received.length} times, then the connection closed`);
    expect(answered).toBeLessThanOrEqual(34);
    expect(stack.backend.received.length).toBeLessThanOrEqual(34);
  });

  test('bytes after a request that says Connection: close are not read, and its answer still goes out', async () => {
    const r = await rawSend(
      stack.sidecar.proxyPort,
      `GET /v1/devices HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${stack.keys.alice.key}\r\nConnection: close\r\n\r\n` +
        `POST /v1/commands/t/a HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${stack.keys.alice.key}\r\nContent-Type: application/json\r\nContent-Length: 24\r\n\r\n{"deviceId":"dev-alice-1"}`,
    );
    expect(statuses(r.raw), r.raw).toEqual([200]);
    expect(writes(stack.backend)).toHaveLength(0);
    // (A request of the flood above may still arrive: it carries n=.)
    expect(stack.backend.received.map((x) => x.url).filter((u) => !u.includes('n='))).toEqual(['/v1/devices?referenceId=alice']);
  });

  test('keep-alive connection: alice then bob keys → each gets own identity (no per-connection auth cache)', async () => {
    const payload =
      `GET /v1/devices HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${stack.keys.alice.key}\r\n\r\n` +
      `GET /v1/devices HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${stack.keys.bob.key}\r\n\r\n` +
      `GET /v1/devices/dev-alice-1 HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${stack.keys.bob.key}\r\nConnection: close\r\n\r\n`;
    const r = await rawSend(stack.sidecar.proxyPort, payload);
    expect(statuses(r.raw), r.raw).toEqual([200, 200, 403]);
    const lists = stack.backend.received.filter((x) => x.url.startsWith('/v1/devices?'));
    expect(lists.map((x) => [x.url, x.headers['x-keygate-reference-id']])).toEqual([
      ['/v1/devices?referenceId=alice', 'alice'],
      ['/v1/devices?referenceId=bob', 'bob'],
    ]);
    expect(r.raw).not.toMatch(/ALICE_SECRET_1[\s\S]*ALICE_SECRET_1/); // alice device never sent to bob
  });

  test('Expect: 100-continue on a scoped command is handled and judged on the real body', async () => {
    const body = '{"deviceId":"dev-bob-1"}';
    const r = await rawSend(
      stack.sidecar.proxyPort,
      `POST /v1/commands/t/a HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${stack.keys.alice.key}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n${body}`,
    );
    expect(
      statuses(r.raw).filter((s) => s !== 100),
      r.raw,
    ).toEqual([403]);
    expect(writes(stack.backend)).toHaveLength(0);
  });
});

describe('huge inputs', () => {
  test('huge header (64 KiB) → 431/400, nothing forwarded, sidecar alive', async () => {
    const r = await rawSend(stack.sidecar.proxyPort, `GET /v1/devices HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${stack.keys.alice.key}\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\nConnection: close\r\n\r\n`);
    expect([400, 431, 0]).toContain(r.status);
    expect(stack.backend.received).toHaveLength(0);
    expect((await send(stack.sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(stack.keys.alice) })).status).toBe(200);
  });

  test.each([
    ['headers over 16 KiB', (key: string) => `GET /v1/devices HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${key}\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`, 431, 'HEADERS_TOO_LARGE'],
    [
      'Content-Length with Transfer-Encoding',
      (key: string) => `POST /v1/commands/thermostat/set HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${key}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      400,
      'MALFORMED_REQUEST',
    ],
    ['a request line that is not HTTP', () => 'HELLO\r\n\r\n', 400, 'MALFORMED_REQUEST'],
  ])("%s: Node's parser refuses it, the answer is Keygate's JSON refusal with its code and a request id, the connection closes", async (_n, payload, status, code) => {
    const r = await rawSend(stack.sidecar.proxyPort, payload(stack.keys.alice.key));
    expect(r.status, r.raw.slice(0, 300)).toBe(status);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.headers.connection).toBe('close');
    const body = JSON.parse(r.body) as { error: { status: number; code: string }; requestId: string };
    expect(body.error).toMatchObject({ status, code });
    expect(body.requestId).toBe(r.headers['x-request-id']);
    expect(stack.backend.received).toHaveLength(0);
  });

  test('CONNECT (a tunnel), with a key or without: 405 JSON with Allow, the connection closes, nothing forwarded; the ops listener too', async () => {
    for (const [port, head] of [
      [stack.sidecar.proxyPort, `Texture-Api-Key: ${stack.keys.server.key}\r\n`],
      [stack.sidecar.proxyPort, ''],
      [stack.sidecar.opsPort, ''],
    ] as Array<[number, string]>) {
      const r = await rawSend(port, `CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n${head}\r\n`);
      expect(r.status, r.raw.slice(0, 300)).toBe(405);
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      expect(r.headers.allow).toContain('GET');
      expect(r.headers.allow).not.toContain('CONNECT');
      // The ops listener takes GET and HEAD only, and says so.
      if (port === stack.sidecar.opsPort) expect(r.headers.allow).toBe('GET, HEAD');
      expect((JSON.parse(r.body) as { error: { code: string } }).error.code).toBe('METHOD_NOT_ALLOWED');
    }
    expect(stack.backend.received).toHaveLength(0);
  });

  test('huge key header (64 KiB key) → 401/431/400', async () => {
    const r = await rawSend(stack.sidecar.proxyPort, `GET /v1/devices HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: api_${'a'.repeat(64 * 1024)}\r\nConnection: close\r\n\r\n`);
    expect([400, 401, 431, 0]).toContain(r.status);
    expect(stack.backend.received).toHaveLength(0);
  });

  test('very long URL (32 KiB) → refused, not forwarded to a foreign device', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: `/v1/devices/${'x'.repeat(32 * 1024)}`, headers: keyHeader(stack.keys.alice) }).catch(() => ({ status: 0, text: '' }));
    expect(r.status === 0 || r.status >= 400).toBe(true);
    expect(writes(stack.backend)).toHaveLength(0);
  });

  test('many query parameters (5000 referenceId variants) → still only referenceId=alice', async () => {
    const q = Array.from({ length: 5000 }, (_, i) => (i % 2 ? 'referenceId=bob' : `ReferenceId[${i}]=bob`)).join('&');
    const r = await send(stack.sidecar.proxyPort, { path: `/v1/devices?${q}`, headers: keyHeader(stack.keys.alice) }).catch(() => ({ status: 0, text: '' }));
    if (r.status === 200) {
      expect(stack.backend.received).toHaveLength(1);
      expect(stack.backend.received[0]!.url.toLowerCase()).not.toContain('bob');
    } else expect(stack.backend.received).toHaveLength(0);
  });
});

describe('methods', () => {
  test('scoped HEAD /v1/devices: refused, or forwarded only with the injected filter', async () => {
    const r = await send(stack.sidecar.proxyPort, { method: 'HEAD', path: '/v1/devices?referenceId=bob', headers: keyHeader(stack.keys.alice) });
    if (r.status < 300) {
      for (const x of stack.backend.received) {
        expect(new URL(x.url, 'http://x').searchParams.getAll('referenceId')).toEqual(['alice']);
      }
    } else {
      expect([403, 405]).toContain(r.status);
      expect(stack.backend.received.filter((x) => x.method === 'HEAD')).toHaveLength(0);
    }
  });

  test('scoped HEAD foreign device → not 2xx', async () => {
    const r = await send(stack.sidecar.proxyPort, { method: 'HEAD', path: '/v1/devices/dev-bob-1', headers: keyHeader(stack.keys.alice) });
    expect([403, 404, 405]).toContain(r.status);
    expect(stack.backend.received.filter((x) => x.method === 'HEAD')).toHaveLength(0);
  });

  test.each(['OPTIONS', 'TRACE', 'PROPFIND', 'PURGE', 'LINK', 'SEARCH', 'QUERY'])('scoped %s /v1/devices/dev-alice-1 → 403/405, nothing forwarded', async (method) => {
    const r = await send(stack.sidecar.proxyPort, { method, path: '/v1/devices/dev-alice-1', headers: keyHeader(stack.keys.alice) }).catch((e: Error) => ({ status: -1, text: String(e) }));
    // -1: rejected by the HTTP parser (unknown method) — also fine
    expect([-1, 400, 403, 405, 501], `${method}: ${r.status} ${r.text}`).toContain(r.status);
    expect(stack.backend.received.filter((x) => x.method === method)).toHaveLength(0);
  });

  test.each(['OPTIONS', 'TRACE', 'PATCH', 'DELETE', 'PUT'])('connect %s /v1/connections → 403/405', async (method) => {
    const r = await send(stack.sidecar.proxyPort, { method, path: '/v1/connections', headers: keyHeader(stack.keys.connect) });
    expect([403, 405], r.text).toContain(r.status);
    expect(stack.backend.received).toHaveLength(0);
  });

  test('unauthenticated OPTIONS (CORS preflight style) is not forwarded', async () => {
    const r = await send(stack.sidecar.proxyPort, {
      method: 'OPTIONS',
      path: '/v1/devices',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'DELETE' },
    });
    expect(r.status).toBeGreaterThanOrEqual(200);
    expect(stack.backend.received).toHaveLength(0);
  });

  test('lowercase method "get" is not treated as GET by the policy while forwarded differently', async () => {
    const r = await rawSend(stack.sidecar.proxyPort, `get /v1/devices HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${stack.keys.alice.key}\r\nConnection: close\r\n\r\n`);
    if (r.status === 200) expect(stack.backend.received.map((x) => x.url)).toEqual(['/v1/devices?referenceId=alice']);
    else expect(stack.backend.received).toHaveLength(0);
  });
});

describe('owner ids that are not plain segments (command bodies)', () => {
  test.each([
    'dev-bob-1/../dev-alice-1',
    'dev-alice-1/../dev-bob-1',
    '../devices/dev-alice-1',
    'dev-alice-1?x=1',
    'dev-alice-1#frag',
    'dev-alice-1/history',
    'dev-alice-1%2F..%2Fdev-bob-1',
    ' dev-alice-1',
    'dev-alice-1\u0000',
    '',
    '.',
    '..',
  ])('deviceId %j: refused, or the lookup was exactly that single id', async (id) => {
    const r = await send(stack.sidecar.proxyPort, {
      method: 'POST',
      path: '/v1/commands/t/a',
      body: JSON.stringify({ deviceId: id }),
      headers: { ...keyHeader(stack.keys.alice), 'content-type': 'application/json' },
    });
    const posts = writes(stack.backend);
    if (posts.length > 0) {
      // forwarded: the ownership proof must have been about exactly this id
      const lookups = stack.backend.received.filter((x) => x.method === 'GET');
      expect(lookups.length).toBeGreaterThan(0);
      for (const l of lookups) {
        const rest = l.url.slice('/v1/devices/'.length);
        expect(l.url.startsWith('/v1/devices/')).toBe(true);
        expect(rest).not.toMatch(/[/?#]/);
        expect(decodeURIComponent(rest)).toBe(id);
      }
    } else {
      expect(r.status).toBeGreaterThanOrEqual(400);
    }
    // never a command targeting bob by any route
    expect(posts.filter((p) => p.body.toString().includes('dev-bob-1') && !p.body.toString().includes('dev-alice-1'))).toHaveLength(0);
  });

  test('GET /v1/devices/{id} with an id containing %3F: lookup and forward refer to the same single id', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices/dev-alice-1%3Fx', headers: keyHeader(stack.keys.alice) });
    for (const x of stack.backend.received) expect(x.url).toBe('/v1/devices/dev-alice-1%3Fx');
    expect([403, 404]).toContain(r.status);
  });

  test('GET /v1/devices/{id} with %23: no fragment truncation into alice id', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices/dev-alice-1%23/../../sites', headers: keyHeader(stack.keys.alice) });
    expect([400, 403, 404]).toContain(r.status);
    expect(r.text).not.toMatch(/site-1|HQ/);
  });
});
