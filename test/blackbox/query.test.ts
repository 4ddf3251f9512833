// Attacks 4 + 5: injected filter is the only one; method override never reaches the backend.
import { describe, expect, test } from 'vitest';
import { keyHeader, send, useStack, writes } from './harness.ts';

const stack = useStack();

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

const VARIANTS: string[] = [
  'referenceId=bob',
  'ReferenceId=bob',
  'REFERENCEID=bob',
  'referenceid=bob',
  '%72eferenceId=bob',
  '%52eferenceId=bob',
  'referenc%65Id=bob',
  'referenceId[]=bob',
  'referenceId%5B%5D=bob',
  'referenceId%5b%5d=bob',
  'referenceId[0]=bob',
  'referenceId[x]=bob',
  'referenceId=bob&referenceId=alice',
  'referenceId=alice&referenceId=bob',
  'referenceId=bob&referenceId=bob',
  'referenceId=bob;x=1',
  'referenceId=bob,alice',
  'referenceId=alice,bob',
  'referenceId=alice%2Cbob',
  'referenceId+=bob',
  'referenceId%20=bob',
  '+referenceId=bob',
  '%20referenceId=bob',
  'referenceId%00=bob',
  'referenceId%09=bob',
  'referenceId=alice%26referenceId%3Dbob',
  'referenceId',
  'referenceId=',
  '&&referenceId=bob&',
  'page=1&referenceId=bob&perPage=10',
  'referenceId=%62ob',
  'referenceId=b%6Fb',
  'referenceId=bob%00',
  'referenceId=alice%00bob',
  'referenceId=*',
  'referenceId=%2A',
  // Filters frameworks read under other names, or in a value: Strapi and JSON:API
  // (`filter[…]`), Django filters (`…__in`, `…_in`), OData (`$filter`), LoopBack (`filter={"where":…}`).
  'filter[referenceId]=bob',
  'filter%5BreferenceId%5D=bob',
  'filters[referenceId][$eq]=bob',
  'referenceId_in=bob',
  'referenceId__in=bob',
  'reference_id__eq=bob',
  'referenceId!=alice',
  '%24filter=referenceId%20eq%20%27bob%27',
  'filter=%7B%22where%22%3A%7B%22referenceId%22%3A%22bob%22%7D%7D',
  'where=%7B%22ReferenceId%22%3A%22bob%22%7D',
];

describe('referenceId variants (scoped alice) → backend gets exactly one referenceId=alice, no bob', () => {
  test.each(VARIANTS)('GET /v1/devices?%s', async (q) => {
    const r = await send(stack.sidecar.proxyPort, { path: `/v1/devices?${q}`, headers: keyHeader(stack.keys.alice) });
    const got = stack.backend.received.map((x) => x.url);
    if (r.status === 400) {
      // refusing an ambiguous query is also safe
      expect(got).toEqual([]);
      return;
    }
    expect(r.status, `${r.status} ${r.text}`).toBe(200);
    expect(got).toHaveLength(1);
    const url = got[0]!;
    const qs = url.slice(url.indexOf('?') + 1);
    expect(new URL(url, 'http://x').searchParams.getAll('referenceId'), url).toEqual(['alice']);
    expect(safeDecode(qs).toLowerCase(), url).not.toContain('bob');
    expect(safeDecode(qs).toLowerCase().split('referenceid').length - 1, `one referenceId name only: ${url}`).toBe(1);
    expect(r.text).not.toMatch(/BOB|dev-bob/);
  });

  test('other query parameters survive filter injection', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices?page=2&perPage=10', headers: keyHeader(stack.keys.alice) });
    expect(r.status).toBe(200);
    const sp = new URL(stack.backend.received[0]!.url, 'http://x').searchParams;
    expect(sp.get('page')).toBe('2');
    expect(sp.get('perPage')).toBe('10');
    expect(sp.getAll('referenceId')).toEqual(['alice']);
  });

  test('referenceId in query of a single-device read does not confuse ownership', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices/dev-bob-1?referenceId=alice', headers: keyHeader(stack.keys.alice) });
    expect(r.status).toBe(403);
    expect(r.text).not.toMatch(/BOB/);
  });

  test('bob key gets bob, with alice variants injected', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices?referenceId=alice&ReferenceId=alice', headers: keyHeader(stack.keys.bob) });
    expect(r.status).toBe(200);
    expect(new URL(stack.backend.received[0]!.url, 'http://x').searchParams.getAll('referenceId')).toEqual(['bob']);
    expect(stack.backend.received[0]!.url.toLowerCase()).not.toContain('alice');
  });

  test('server key: the client referenceId is passed through untouched (no injection for server)', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices?referenceId=bob', headers: keyHeader(stack.keys.server) });
    expect(r.status).toBe(200);
    expect(stack.backend.received.map((x) => x.url)).toEqual(['/v1/devices?referenceId=bob']);
  });
});

const OVERRIDE_HEADERS = ['x-http-method-override', 'x-http-method', 'x-method-override'];

function noOverrideReached() {
  for (const x of stack.backend.received) {
    for (const h of OVERRIDE_HEADERS) expect(x.headers[h], `${h} reached backend on ${x.method} ${x.url}`).toBeUndefined();
    expect(safeDecode(x.url).toLowerCase(), `_method reached backend: ${x.url}`).not.toMatch(/_method/);
  }
}

describe('method override (stripped or refused, never a write)', () => {
  for (const h of ['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override']) {
    for (const verb of ['DELETE', 'PUT', 'PATCH', 'POST']) {
      test(`scoped GET own device with ${h}: ${verb}`, async () => {
        const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices/dev-alice-1', headers: { ...keyHeader(stack.keys.alice), [h]: verb } });
        expect([200, 400, 403], r.text).toContain(r.status);
        expect(writes(stack.backend)).toHaveLength(0);
        noOverrideReached();
      });
    }
    test(`server GET with ${h}: DELETE → header not forwarded`, async () => {
      const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices/dev-bob-1', headers: { ...keyHeader(stack.keys.server), [h]: 'DELETE' } });
      expect([200, 400, 403]).toContain(r.status);
      noOverrideReached();
    });
  }

  test.each(['_method=DELETE', '_method=PUT', '_METHOD=DELETE', '%5Fmethod=DELETE', '_method=delete&x=1', 'x=1&_method=PATCH'])('scoped GET own device ?%s', async (q) => {
    const r = await send(stack.sidecar.proxyPort, { path: `/v1/devices/dev-alice-1?${q}`, headers: keyHeader(stack.keys.alice) });
    expect([200, 400, 403], r.text).toContain(r.status);
    expect(writes(stack.backend)).toHaveLength(0);
    noOverrideReached();
  });

  // Restlet's tunnel reads ?method=, Salesforce-style APIs _HttpMethod; the override headers' names may be read as parameters.
  test.each([
    'method=DELETE',
    'Method=PUT',
    '_HttpMethod=DELETE',
    'httpMethod=PATCH',
    'x-http-method-override=DELETE',
    'X_HTTP_METHOD=DELETE',
    'x.method.override=PUT',
    'keep=1&method=DELETE',
    'x-original-method=DELETE',
    'methodOverride=DELETE',
    '_verb=DELETE',
    'request_method=DELETE',
    '%24method=DELETE',
    'a[_method]=DELETE',
  ])('scoped command POST ?%s: the parameter never reaches the backend', async (q) => {
    const r = await send(stack.sidecar.proxyPort, {
      method: 'POST',
      path: `/v1/commands/thermostat/set?${q}`,
      body: '{"deviceId":"dev-alice-1"}',
      headers: { ...keyHeader(stack.keys.alice), 'content-type': 'application/json' },
    });
    expect([200, 201, 202], r.text).toContain(r.status);
    const sent = stack.backend.received.filter((x) => x.method === 'POST');
    expect(sent).toHaveLength(1);
    const names = [...new URL(sent[0]!.url, 'http://x').searchParams.keys()].map((k) => k.toLowerCase().replace(/[-_. ]/g, ''));
    for (const n of names) expect(/method|override|^verb$/.test(n), n).toBe(false);
  });

  test('a server key keeps ?method= (full access: its parameters are its own)', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices?method=card', headers: keyHeader(stack.keys.server) });
    expect(r.status).toBe(200);
    expect(stack.backend.received.map((x) => x.url)).toEqual(['/v1/devices?method=card']);
  });

  test('scoped list ?_method=DELETE → not forwarded as override', async () => {
    const r = await send(stack.sidecar.proxyPort, { path: '/v1/devices?_method=DELETE', headers: keyHeader(stack.keys.alice) });
    expect([200, 400, 403]).toContain(r.status);
    noOverrideReached();
  });

  test('scoped command POST with X-HTTP-Method-Override: DELETE → header stripped or refused', async () => {
    const r = await send(stack.sidecar.proxyPort, {
      method: 'POST',
      path: '/v1/commands/thermostat/set?_method=DELETE',
      body: '{"deviceId":"dev-alice-1"}',
      headers: { ...keyHeader(stack.keys.alice), 'content-type': 'application/json', 'x-http-method-override': 'DELETE', 'x-method-override': 'PUT' },
    });
    expect([201, 400, 403]).toContain(r.status);
    for (const w of writes(stack.backend)) expect(w.method).toBe('POST');
    noOverrideReached();
  });

  test('override header listed in Connection header (hop-by-hop trick) still never reaches backend', async () => {
    const r = await send(stack.sidecar.proxyPort, {
      path: '/v1/devices/dev-alice-1',
      headers: { ...keyHeader(stack.keys.alice), 'x-http-method-override': 'DELETE', connection: 'keep-alive, x-http-method-override' },
    });
    expect([200, 400, 403]).toContain(r.status);
    noOverrideReached();
  });
});
