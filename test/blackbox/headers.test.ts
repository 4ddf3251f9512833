// Attacks 7 + 8: a backend that ignores the filter; identity headers; the key never reaches the backend.
import { gzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { DEVICES, errorBody, type KeyInfo, type KeySet, keyHeader, type Received, send, useStack } from './harness.ts';

const stack = useStack();

describe('backend ignores the referenceId filter', () => {
  test('scoped list never shows bob items', async () => {
    stack.backend.ignoreFilter = true;
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(stack.keys.alice) });
    expect(r.text).not.toMatch(/BOB|dev-bob|"bob"/);
    if (r.status === 200) {
      const j = r.json as { data: Array<{ referenceId: string }> };
      expect(Array.isArray(j.data)).toBe(true);
      expect(j.data.every((d) => d.referenceId === 'alice')).toBe(true);
      expect(j.data.length).toBe(2);
    }
  });

  test('bob scoped list never shows alice items', async () => {
    stack.backend.ignoreFilter = true;
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices?perPage=100', headers: keyHeader(stack.keys.bob) });
    expect(r.text).not.toMatch(/ALICE|dev-alice|"alice"/);
  });

  // Invariant 5 is unconditional: "No other user's data reaches a scoped client, even when the
  // backend ignores the filter". A list body is a list body whatever status it comes with.
  test.each([404, 500])("scoped list answered with status %i and everyone's items → bob never reaches alice", async (status) => {
    stack.backend.responder = (rec) =>
      rec.method === 'GET' && rec.url.startsWith('/v1/devices?') ? { status, body: JSON.stringify({ data: DEVICES, page: 1, perPage: 50, totalItems: 4, totalPages: 1 }) } : undefined;
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(stack.keys.alice) });
    expect(r.text, `status ${r.status}`).not.toMatch(/BOB_SECRET|dev-bob/);
  });

  test('scoped list with a JSON content-type variant is still filtered', async () => {
    for (const ct of ['application/json;charset=UTF-8', 'APPLICATION/JSON', 'application/vnd.texture+json']) {
      stack.backend.responder = (rec) =>
        rec.method === 'GET' && rec.url.startsWith('/v1/devices?')
          ? { status: 200, headers: { 'content-type': ct }, body: JSON.stringify({ data: DEVICES, page: 1, perPage: 50, totalItems: 4, totalPages: 1 }) }
          : undefined;
      const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(stack.keys.alice) });
      expect(r.text, ct).not.toMatch(/BOB_SECRET|dev-bob/);
    }
  });

  test('scoped list answered gzip-compressed / non-JSON / chunked → never unfiltered', async () => {
    const all = JSON.stringify({ data: DEVICES, page: 1, perPage: 50, totalItems: 4, totalPages: 1 });
    const variants: Array<{ status: number; headers?: Record<string, string>; body: string | Buffer }> = [
      { status: 200, headers: { 'content-encoding': 'gzip' }, body: gzipSync(all) },
      { status: 200, headers: { 'content-type': 'text/plain' }, body: all },
      { status: 200, headers: { 'content-type': 'application/octet-stream' }, body: all },
    ];
    for (const v of variants) {
      stack.backend.responder = (rec) => (rec.method === 'GET' && rec.url.startsWith('/v1/devices?') ? v : undefined);
      const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices', headers: { ...keyHeader(stack.keys.alice), 'accept-encoding': 'gzip' } });
      const text = r.headers['content-encoding'] === 'gzip' ? '(compressed body relayed)' + r.text : r.text;
      expect(text, JSON.stringify(v.headers)).not.toMatch(/BOB_SECRET|dev-bob|compressed body relayed/);
    }
  });

  test('a large list (3 MB) from a filter-ignoring backend is still filtered', async () => {
    const many = Array.from({ length: 15_000 }, (_, i) => ({ id: `dev-bob-x${i}`, referenceId: 'bob', secret: 'BOB_SECRET_BIG', pad: 'p'.repeat(150) }));
    const body = JSON.stringify({ data: [...DEVICES, ...many], page: 1, perPage: 50, totalItems: 15_004, totalPages: 1 });
    stack.backend.responder = (rec) => (rec.method === 'GET' && rec.url.startsWith('/v1/devices?') ? { status: 200, body } : undefined);
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(stack.keys.alice) });
    expect(r.text.slice(0, 300)).not.toMatch(/BOB_SECRET|dev-bob/);
    expect(r.text).not.toMatch(/BOB_SECRET|dev-bob/);
  });

  test('server key sees everything when backend returns everything (no filtering for server)', async () => {
    stack.backend.ignoreFilter = true;
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices?referenceId=alice', headers: keyHeader(stack.keys.server) });
    expect(r.status).toBe(200);
    expect((r.json as { data: unknown[] }).data).toHaveLength(4);
  });
});

function allBytes(x: Received): string {
  return [x.url, ...x.rawHeaders, x.body.toString('latin1')].join('\n');
}

function secretPart(k: KeyInfo): string {
  return k.key.slice(k.key.indexOf('_') + 1);
}

describe('identity headers and key stripping', () => {
  const cases: Array<[string, keyof Omit<KeySet, 'store'>, string, string, string?]> = [
    ['server', 'server', 'GET', '/v1/devices/dev-alice-1'],
    ['scoped list', 'alice', 'GET', '/v1/devices'],
    ['scoped read', 'alice', 'GET', '/v1/devices/dev-alice-1/history'],
    ['scoped command', 'alice', 'POST', '/v1/commands/thermostat/set', '{"deviceId":"dev-alice-1"}'],
  ];

  test.each(cases)('%s: key never reaches backend, spoofed X-Keygate-* replaced', async (_n, who, method, path, body) => {
    const k = stack.keys[who];
    const r = await send(stack.sidecar.proxyPort, {
      method,
      path,
      body,
      headers: {
        ...keyHeader(k),
        ...(body ? { 'content-type': 'application/json' } : {}),
        'X-Keygate-Key-Id': 'key_spoofed',
        'X-Keygate-Key-Type': 'server',
        'X-Keygate-Reference-Id': 'bob',
        'x-keygate-roles': 'admin',
        'X-KEYGATE-EXTRA': 'evil',
        'x-keygate-reference-id-2': 'bob',
      },
    });
    expect(r.status, r.text).toBeLessThan(300);
    expect(stack.backend.received.length).toBeGreaterThan(0);
    for (const x of stack.backend.received) {
      const blob = allBytes(x);
      expect(blob).not.toContain(secretPart(k));
      expect(x.headers['texture-api-key']).toBeUndefined();
      // Keygate's own owner lookups may tag themselves (x-keygate-purpose); that is Keygate's header, not the client's
      const own = (h: string) => h === 'x-keygate-purpose' && x.headers[h] !== 'evil';
      const kg = Object.keys(x.headers)
        .filter((h) => h.startsWith('x-keygate-') && !own(h))
        .sort();
      const expected = k.type === 'scoped' ? ['x-keygate-key-id', 'x-keygate-key-type', 'x-keygate-reference-id'] : ['x-keygate-key-id', 'x-keygate-key-type'];
      expect(kg).toEqual(expected);
      // exactly one value each (no appended spoof)
      const raw = x.rawHeaders
        .filter((_, i) => i % 2 === 0)
        .map((h) => h.toLowerCase())
        .filter((h) => h.startsWith('x-keygate-') && !own(h));
      expect(raw.sort()).toEqual(expected);
      expect(x.headers['x-keygate-key-id']).toBe(k.id);
      expect(x.headers['x-keygate-key-type']).toBe(k.type);
      if (k.type === 'scoped') expect(x.headers['x-keygate-reference-id']).toBe(k.referenceId);
      expect(blob).not.toContain('key_spoofed');
      expect(blob).not.toMatch(/evil|admin/);
    }
  });

  test.each(cases)('%s: a copy of the key in another header or the query never reaches the backend either', async (_n, who, method, path, body) => {
    const k = stack.keys[who];
    const sep = path.includes('?') ? '&' : '?';
    const encoded = encodeURIComponent(k.key).replace('_', '%5F');
    const r = await send(stack.sidecar.proxyPort, {
      method,
      path: `${path}${sep}api_key=${k.key}&Texture-Api-Key=${encoded}&keep=1`,
      body,
      headers: {
        ...keyHeader(k),
        ...(body ? { 'content-type': 'application/json' } : {}),
        authorization: `Bearer ${k.key}`,
        'x-api-key': k.key,
        cookie: `session=s1; texture_key=${k.key}`,
        'x-kept': 'yes',
      },
    });
    expect(r.status, r.text).toBeLessThan(300);
    expect(stack.backend.received.length).toBeGreaterThan(0);
    for (const x of stack.backend.received) {
      expect(allBytes(x)).not.toContain(secretPart(k));
      if (x.headers['x-keygate-purpose'] !== 'attribute-lookup') {
        expect(x.headers['x-kept']).toBe('yes');
        expect(x.url).toContain('keep=1');
      }
    }
  });

  test.each(cases)(
    '%s: an encoded copy of the key (Basic auth, percent-encoded, another separator, base64) in a header or the query never reaches the backend; a look-alike value does',
    async (_n, who, method, path, body) => {
      const k = stack.keys[who];
      const sep = path.includes('?') ? '&' : '?';
      const b64 = Buffer.from(k.key).toString('base64');
      const plus = encodeURIComponent(k.key.replace('_', '+'));
      const lookAlike = `https://app.example/api/${'a1B2c3D4e5'.repeat(4)}`;
      const r = await send(stack.sidecar.proxyPort, {
        method,
        path: `${path}${sep}copy=${encodeURIComponent(b64)}&copy2=${plus}&copy3=${k.key.replace('_', '.')}&keep=1`,
        body,
        headers: {
          ...keyHeader(k),
          ...(body ? { 'content-type': 'application/json' } : {}),
          authorization: `Basic ${Buffer.from(`${k.key}:`).toString('base64')}`,
          'x-copy-1': k.key.replace('_', '%5F'),
          'x-copy-2': k.key.replace('_', '.'),
          'x-copy-3': Buffer.from(k.key).toString('base64url'),
          'x-copy-4': k.key.slice(k.key.indexOf('_') + 1),
          'x-copy-5': k.key.replace('_', '____'),
          cookie: `session=s1; auth=${encodeURIComponent(k.key.replace('_', '%5F'))}`,
          referer: lookAlike,
          'x-kept': 'yes',
        },
      });
      expect(r.status, r.text).toBeLessThan(300);
      expect(stack.backend.received.length).toBeGreaterThan(0);
      for (const x of stack.backend.received) {
        const all = allBytes(x);
        expect(all).not.toContain(secretPart(k));
        expect(all).not.toContain(b64.slice(8, 40));
        expect(all).not.toContain(Buffer.from(`${k.key}:`).toString('base64').slice(8, 40));
        for (const name of ['authorization', 'x-copy-1', 'x-copy-2', 'x-copy-3', 'x-copy-4', 'x-copy-5', 'cookie']) expect(x.headers[name]).toBeUndefined();
        if (x.headers['x-keygate-purpose'] !== 'attribute-lookup') {
          expect(x.headers['x-kept']).toBe('yes');
          expect(x.headers.referer).toBe(lookAlike);
          expect(x.url).toContain('keep=1');
          expect(x.url).not.toContain('copy');
        }
      }
    },
  );

  test('Connection: x-keygate-* (hop-by-hop trick) is refused, nothing forwarded', async () => {
    const r = await send(stack.sidecar.proxyPort, {
      path: '/v1/devices',
      headers: { ...keyHeader(stack.keys.alice), connection: 'keep-alive, x-keygate-reference-id, x-keygate-key-id, x-keygate-key-type' },
    });
    expect(r.status).toBe(400);
    expect(errorBody(r).error.code).toBe('INVALID_CONNECTION_HEADER');
    expect(stack.backend.received).toHaveLength(0);
  });

  test('Connection: texture-api-key is refused; the key never reaches the backend', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/sites', headers: { ...keyHeader(stack.keys.server), connection: 'texture-api-key' } });
    expect(r.status).toBe(400);
    for (const x of stack.backend.received) expect(allBytes(x)).not.toContain(secretPart(stack.keys.server));
  });

  test('server key: a spoofed X-Keygate-Reference-Id does not reach the backend', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices', headers: { ...keyHeader(stack.keys.server), 'x-keygate-reference-id': 'alice' } });
    expect(r.status).toBe(200);
    expect(stack.backend.received[0]!.headers['x-keygate-reference-id']).toBeUndefined();
  });

  test('owner lookups issued by Keygate do not carry the key either', async () => {
    await send(stack.sidecar.proxyPort, { path: '/v1/devices/dev-bob-2', headers: keyHeader(stack.keys.alice) });
    await send(stack.sidecar.proxyPort, {
      method: 'POST',
      path: '/v1/commands/x/y',
      body: '{"deviceId":"dev-alice-2"}',
      headers: { ...keyHeader(stack.keys.alice), 'content-type': 'application/json' },
    });
    for (const x of stack.backend.received) expect(allBytes(x)).not.toContain(secretPart(stack.keys.alice));
  });

  test('successful responses carry a request id header; distinct per request', async () => {
    const a = await send(stack.sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(stack.keys.alice) });
    const b = await send(stack.sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(stack.keys.alice) });
    const id = (r: typeof a) => Object.entries(r.headers).find(([h]) => /request-id/i.test(h))?.[1];
    expect(id(a)).toBeTruthy();
    expect(id(b)).toBeTruthy();
    expect(id(a)).not.toBe(id(b));
  });

  // The response headers are relayed as a flat list (mutate.ts responseHeaders): repeated
  // headers stay repeated, and the backend's own X-Request-Id gives way to Keygate's. A
  // checked list is written by Keygate and keeps only headers about the response, not
  // the data (X-Backend here could count anything).
  test.each([
    ['server key, streamed answer', 'server', false],
    ['scoped key, checked answer released as it came', 'alice', false],
    ['scoped key, checked answer filtered and re-serialised', 'alice', true],
  ] as const)("%s: both Set-Cookie headers, one X-Request-Id (Keygate's)", async (_n, who, everyone) => {
    stack.backend.responder = (rec) =>
      rec.method === 'GET' && rec.url.startsWith('/v1/devices')
        ? {
            status: 200,
            headers: { 'set-cookie': ['a=1; Path=/', 'b=2; Path=/'], 'x-request-id': 'backend-own-id', 'x-backend': 'kept' },
            body: JSON.stringify({ data: everyone ? DEVICES : DEVICES.filter((d) => d.referenceId === 'alice'), page: 1, perPage: 50, totalItems: 4, totalPages: 1 }),
          }
        : undefined;
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(stack.keys[who]) });
    expect(r.status).toBe(200);
    expect(r.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
    expect(r.headers['x-backend']).toBe(who === 'server' ? 'kept' : undefined);
    expect(r.headers['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-z]+$/);
    expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength(r.text));
    expect(r.headers['x-keygate-filtered']).toBeUndefined();
  });

  test('403 carries request id header equal to JSON requestId', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/sites', headers: keyHeader(stack.keys.alice) });
    expect(r.status).toBe(403);
    const e = errorBody(r);
    const hdr = Object.entries(r.headers).find(([h]) => /request-id/i.test(h))?.[1];
    expect(hdr).toBe(e.requestId);
  });

  test('backend response headers cannot smuggle another user: response is passed as-is for own data', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices/dev-alice-1', headers: keyHeader(stack.keys.alice) });
    expect(r.status).toBe(200);
    expect((r.json as { id: string }).id).toBe('dev-alice-1');
  });
});
