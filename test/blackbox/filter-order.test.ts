// Invariants 3 and 9 (the injected filter is the only one; one meaning) where the backend's
// parser, not the query's spelling, decides what it reads:
// - parsers that stop after N pairs (Express's qs and Node's querystring: 1000, PHP's
//   max_input_vars: 1000, Tomcat's maxParameterCount) drop whatever comes later, so a
//   filter appended after 1000 client pairs is never read and the list runs unfiltered;
// - PHP's $_REQUEST (request_order unset: G, P, then C, later wins) lets a cookie named
//   like the filter or the id override the query Keygate wrote.
// The backend here records what it received; the assertions read it as those parsers do.
import { describe, expect, test } from 'vitest';
import { keyHeader, type Received, type Res, send, useStack } from './harness.ts';

const stack = useStack();

function code(r: Res): string | undefined {
  return (r.json as { error?: { code?: string } } | null)?.error?.code;
}

/** The query's pairs as sent, split at `&` as qs and PHP split them. */
function pairs(url: string): string[] {
  const q = url.indexOf('?');
  return q === -1 ? [] : url.slice(q + 1).split('&');
}

/** `qs.parse(query, { parameterLimit })` / PHP's max_input_vars: only the first `limit` pairs, first the query, decoded. */
function firstPairs(url: string, limit = 1000): Map<string, string> {
  const out = new Map<string, string>();
  for (const p of pairs(url).slice(0, limit)) {
    const eq = p.indexOf('=');
    out.set(decodeURIComponent(eq === -1 ? p : p.slice(0, eq)), decodeURIComponent(eq === -1 ? '' : p.slice(eq + 1)));
  }
  return out;
}

/** The Cookie header(s) the backend received, as sent. */
function cookies(rec: Received): string[] {
  const out: string[] = [];
  for (let i = 0; i < rec.rawHeaders.length; i += 2) if (rec.rawHeaders[i]!.toLowerCase() === 'cookie') out.push(rec.rawHeaders[i + 1]!);
  return out;
}

/**
 * PHP's `$_REQUEST` with request_order unset (variables_order "EGPCS"): the query, then the
 * cookies, a later name overwriting an earlier one; names as PHP registers them (a space or
 * `.` becomes `_`, a `[...]` suffix makes an array, which we read as its base name).
 */
function phpRequest(rec: Received): Record<string, string> {
  const out: Record<string, string> = {};
  const put = (rawName: string, rawValue: string) => {
    let name: string;
    let value: string;
    try {
      name = decodeURIComponent(rawName.replaceAll('+', ' ')).trimStart();
      value = decodeURIComponent(rawValue.replaceAll('+', ' '));
    } catch {
      return;
    }
    const bracket = name.indexOf('[');
    const base = (bracket === -1 ? name : name.slice(0, bracket)).replace(/[ .]/g, '_');
    if (base !== '') out[base] = value;
  };
  for (const p of pairs(rec.url)) {
    const eq = p.indexOf('=');
    put(eq === -1 ? p : p.slice(0, eq), eq === -1 ? '' : p.slice(eq + 1));
  }
  for (const header of cookies(rec)) {
    for (const c of header.split(';')) {
      const eq = c.indexOf('=');
      put(eq === -1 ? c : c.slice(0, eq), eq === -1 ? '' : c.slice(eq + 1));
    }
  }
  return out;
}

function forwarded(): Received[] {
  return stack.backend.received.filter((r) => r.headers['x-keygate-purpose'] !== 'attribute-lookup');
}

describe('the injected filter is the first pair of the forwarded query', () => {
  test('GET /v1/devices?page=2&perPage=10: the backend receives referenceId=alice first, the client pairs after it as sent', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices?page=2&perPage=10&referenceId=bob', headers: keyHeader(stack.keys.alice) });
    expect(r.status, r.text).toBe(200);
    expect(forwarded().map((x) => x.url)).toEqual(['/v1/devices?referenceId=alice&page=2&perPage=10']);
  });

  test('256 client pairs (the most a judged key may send): forwarded, and a parser that reads only the first 1000 (or 10) still reads the filter', async () => {
    const q = Array.from({ length: 256 }, (_, i) => `a${i}=1`).join('&');
    const r = await send(stack.sidecar.proxyPort, { path: `/v1/devices?${q}`, headers: keyHeader(stack.keys.alice) });
    expect(r.status, r.text).toBe(200);
    const [got] = forwarded();
    expect(pairs(got!.url)).toHaveLength(257);
    expect(pairs(got!.url)[0]).toBe('referenceId=alice');
    expect(firstPairs(got!.url, 1000).get('referenceId')).toBe('alice');
    expect(firstPairs(got!.url, 10).get('referenceId')).toBe('alice');
    expect(r.text).not.toMatch(/BOB|dev-bob/);
  });
});

describe('a judged key may send at most 256 query pairs', () => {
  test.each([
    ['257 pairs', Array.from({ length: 257 }, (_, i) => `a${i}=1`).join('&')],
    ['1000 pairs (the attack: qs and PHP would drop a filter after them)', Array.from({ length: 1000 }, (_, i) => `a${i}=1`).join('&')],
    ['300 pairs split by ;', Array.from({ length: 300 }, (_, i) => `a${i}=1`).join(';')],
  ])('scoped GET /v1/devices with %s → 400 TOO_MANY_PARAMETERS, nothing forwarded; a server key is not limited', async (_what, q) => {
    const r = await send(stack.sidecar.proxyPort, { path: `/v1/devices?${q}`, headers: keyHeader(stack.keys.alice) });
    expect(r.status, r.text).toBe(400);
    expect(code(r)).toBe('TOO_MANY_PARAMETERS');
    const single = await send(stack.sidecar.proxyPort, { path: `/v1/devices/dev-alice-1?${q}`, headers: keyHeader(stack.keys.alice) });
    expect(single.status, single.text).toBe(400);
    expect(stack.backend.received).toEqual([]);
    const server = await send(stack.sidecar.proxyPort, { path: `/v1/devices?${q}`, headers: keyHeader(stack.keys.server) });
    expect(server.status, server.text).toBe(200);
    expect(forwarded().map((x) => x.url)).toEqual([`/v1/devices?${q}`]);
  });
});

describe('cookies named like the filter or the id never reach the backend for a judged key', () => {
  test.each([
    'referenceId=bob',
    'ReferenceId=bob',
    'REFERENCEID=bob',
    'reference_id=bob',
    'Reference-Id=bob',
    'reference.id=bob',
    'referenceId%5B%5D=bob',
    'referenceId[]=bob',
    'referenceId[0]=bob',
    '%72eferenceId=bob',
    'referenc%65Id=bob',
    'reference%C4%B1d=bob',
    // Raw UTF-8 on the wire (each byte one latin1 character here): `referenceıd`, fullwidth `ｒ`.
    Buffer.from('referenceıd=bob', 'utf8').toString('latin1'),
    Buffer.from('ｒeferenceId=bob', 'utf8').toString('latin1'),
    ' referenceId=bob',
    'filter[referenceId]=bob',
    'referenceId_in=bob',
    'id=dev-bob-1',
    'deviceId=dev-bob-1',
    'device_id=dev-bob-1',
    'a=1, referenceId=bob',
  ])('scoped GET /v1/devices with Cookie: %s → the backend receives no Cookie header, PHP reads referenceId=alice', async (cookie) => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices', headers: { ...keyHeader(stack.keys.alice), cookie } });
    expect(r.status, r.text).toBe(200);
    const [got] = forwarded();
    expect(cookies(got!)).toEqual([]);
    expect(phpRequest(got!).referenceId).toBe('alice');
    expect(r.text).not.toMatch(/BOB|dev-bob/);
  });

  test('the other cookies are kept byte for byte; a server key sends every cookie as it was', async () => {
    const cookie = 'session=a%20b+c; referenceId=bob; theme="dark mode"; ReferenceId%5B%5D=bob;lang=en';
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices', headers: { ...keyHeader(stack.keys.alice), cookie } });
    expect(r.status, r.text).toBe(200);
    const [got] = forwarded();
    expect(cookies(got!)).toEqual(['session=a%20b+c; theme="dark mode"; lang=en']);
    expect(phpRequest(got!).referenceId).toBe('alice');
    stack.backend.received.length = 0;
    const server = await send(stack.sidecar.proxyPort, { path: '/v1/devices', headers: { ...keyHeader(stack.keys.server), cookie } });
    expect(server.status).toBe(200);
    expect(cookies(forwarded()[0]!)).toEqual([cookie]);
  });

  test("a device's history: deviceId and id cookies naming bob's device are dropped, the rest kept", async () => {
    const r = await send(stack.sidecar.proxyPort, {
      path: '/v1/devices/dev-alice-1/history',
      headers: { ...keyHeader(stack.keys.alice), cookie: 'deviceId=dev-bob-1; id=dev-bob-1; DEVICE-ID=dev-bob-1; device=dev-bob-1; sid=s1' },
    });
    expect(r.status, r.text).toBe(200);
    const [got] = forwarded();
    expect(got!.url).toBe('/v1/devices/dev-alice-1/history');
    expect(cookies(got!)).toEqual(['sid=s1']);
    expect(phpRequest(got!).deviceId).toBeUndefined();
    expect(phpRequest(got!).id).toBeUndefined();
  });

  test('a command for alice’s device: a deviceId cookie naming bob’s is dropped', async () => {
    const r = await send(stack.sidecar.proxyPort, {
      method: 'POST',
      path: '/v1/commands/thermostat/set',
      headers: { ...keyHeader(stack.keys.alice), 'content-type': 'application/json', cookie: 'deviceId=dev-bob-1; referenceId=bob' },
      body: JSON.stringify({ deviceId: 'dev-alice-1' }),
    });
    expect(r.status, r.text).toBe(201);
    const [got] = forwarded();
    expect(got!.method).toBe('POST');
    expect(cookies(got!)).toEqual([]);
  });
});
