/**
 * Invariant 9 against a multi-tenant backend (ABP-style tenant resolvers): the backend
 * picks the tenant from a `__tenant` query parameter, an `X-Tenant-Id` header, a `tenant`
 * cookie or the subdomain of `X-Forwarded-Host`, and device `1` is alice's in the default
 * tenant and bob's in `globex`. An owner lookup sent without the request's context proved
 * device 1 of the default tenant while the request acted on device 1 of `globex`: alice
 * read bob's history and commanded bob's thermostat. The lookup now carries the forwarded
 * request's query and headers (and is cached under them).
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { keyHeader, type Received, send, useStack } from './harness.ts';

const stack = useStack();
/** Commands the backend executed: tenant and owner of the device they ran on. */
const executed: Array<{ tenant: string; owner: string }> = [];

const OWNERS: Record<string, Record<string, string>> = { acme: { '1': 'alice' }, globex: { '1': 'bob' } };

function tenantOf(rec: Received, url: URL): string {
  const fromQuery = url.searchParams.get('__tenant');
  if (fromQuery !== null) return fromQuery;
  const header = rec.headers['x-tenant-id'];
  if (typeof header === 'string') return header;
  const cookie = /(?:^|;\s*)tenant=([^;]+)/.exec(String(rec.headers.cookie ?? ''))?.[1];
  if (cookie !== undefined) return cookie;
  const host = String(rec.headers['x-forwarded-host'] ?? '');
  const sub = /^([a-z]+)\.api\.example$/.exec(host)?.[1];
  return sub ?? 'acme';
}

beforeEach(() => {
  executed.length = 0;
  stack.backend.responder = (rec) => {
    const url = new URL(rec.url, 'http://backend');
    const tenant = tenantOf(rec, url);
    const device = /^\/v1\/devices\/([^/]+)(\/history)?$/.exec(url.pathname);
    if (device !== null && rec.method === 'GET') {
      const owner = OWNERS[tenant]?.[device[1]!];
      if (owner === undefined) return { status: 404, body: '{"error":"no such device"}' };
      if (device[2] !== undefined) return { status: 200, body: JSON.stringify({ data: [{ deviceId: device[1], reading: `${owner}-private-reading` }] }) };
      return { status: 200, body: JSON.stringify({ id: device[1], referenceId: owner, name: `${owner} thermostat` }) };
    }
    if (url.pathname.startsWith('/v1/commands/') && rec.method === 'POST') {
      const { deviceId } = JSON.parse(rec.body.toString('utf8')) as { deviceId: string };
      const owner = OWNERS[tenant]?.[deviceId];
      if (owner === undefined) return { status: 404, body: '{}' };
      executed.push({ tenant, owner });
      return { status: 201, body: JSON.stringify({ id: `cmd-${executed.length}`, deviceId, status: 'queued' }) };
    }
    return undefined;
  };
});

const command = (headers: Record<string, string> = {}, query = '') =>
  send(stack.sidecar.proxyPort, {
    method: 'POST',
    path: `/v1/commands/thermostat/setMode${query}`,
    headers: { ...keyHeader(stack.keys.alice), 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ deviceId: '1', input: { mode: 'off' } }),
  });

describe("a scoped key and a backend that picks the tenant from the request's context", () => {
  it("acts on its own device 1 of the default tenant (and of the default tenant named), and the lookup carried the request's context", async () => {
    expect((await send(stack.sidecar.proxyPort, { path: '/v1/devices/1/history', headers: keyHeader(stack.keys.alice) })).status).toBe(200);
    expect((await command()).status).toBe(201);
    expect((await send(stack.sidecar.proxyPort, { path: '/v1/devices/1/history?__tenant=acme', headers: keyHeader(stack.keys.alice) })).status).toBe(200);
    const lookup = stack.backend.received.find((r) => r.url === '/v1/devices/1?__tenant=acme');
    expect(lookup?.headers['x-keygate-purpose']).toBe('attribute-lookup');
    expect(executed).toEqual([{ tenant: 'acme', owner: 'alice' }]);
  });

  it.each([
    ['a query parameter', { query: '?__tenant=globex' }],
    ['a header', { headers: { 'X-Tenant-Id': 'globex' } }],
    ['a cookie', { headers: { cookie: 'tenant=globex' } }],
    ['the Host (X-Forwarded-Host of a subdomain)', { headers: { host: 'globex.api.example' } }],
  ])("cannot reach bob's device 1 of another tenant named in %s: neither its history nor a command", async (_how, via: { query?: string; headers?: Record<string, string> }) => {
    const history = await send(stack.sidecar.proxyPort, { path: `/v1/devices/1/history${via.query ?? ''}`, headers: { ...keyHeader(stack.keys.alice), ...via.headers } });
    expect(history.status).toBe(403);
    expect(history.text).not.toContain('bob-private-reading');
    const r = await command(via.headers, via.query);
    expect(r.status).toBe(403);
    expect(executed).toEqual([]);
    expect(stack.backend.received.filter((x) => x.method === 'POST')).toEqual([]);
  });

  it('a lookup in one context is not reused for another: the cached proof of acme/1 does not admit globex/1', async () => {
    expect((await send(stack.sidecar.proxyPort, { path: '/v1/devices/1/history', headers: keyHeader(stack.keys.alice) })).status).toBe(200);
    expect((await send(stack.sidecar.proxyPort, { path: '/v1/devices/1/history', headers: { ...keyHeader(stack.keys.alice), 'x-tenant-id': 'globex' } })).status).toBe(403);
    expect((await send(stack.sidecar.proxyPort, { path: '/v1/devices/1/history', headers: keyHeader(stack.keys.alice) })).status).toBe(200);
  });
});

describe('the context a tenant can hide in, beyond the query, X-Tenant-Id, cookies and the Host', () => {
  it.each([
    ['OpenTelemetry baggage', { baggage: 'tenant=globex' }],
    ['a vendor media type in Accept', { accept: 'application/vnd.globex+json' }],
    ['Cache-Control', { 'cache-control': 'tenant=globex' }],
  ])("%s: the lookup carries it, and alice gets no history or command of bob's device 1", async (_how, headers: Record<string, string>) => {
    const resolver = (rec: Received, url: URL): string | undefined => {
      const all = `${rec.headers.baggage ?? ''} ${rec.headers.accept ?? ''} ${rec.headers['cache-control'] ?? ''}`;
      return /globex/.test(all) ? 'globex' : (url.searchParams.get('__tenant') ?? undefined);
    };
    const inner = stack.backend.responder!;
    stack.backend.responder = (rec) => {
      const url = new URL(rec.url, 'http://backend');
      const t = resolver(rec, url);
      return inner(t === undefined ? rec : { ...rec, url: `${url.pathname}?__tenant=${t}` });
    };
    // A lookup from the plain context first, so a cache that ignored the context would answer from it.
    expect((await send(stack.sidecar.proxyPort, { path: '/v1/devices/1/history', headers: keyHeader(stack.keys.alice) })).status).toBe(200);
    const history = await send(stack.sidecar.proxyPort, { path: '/v1/devices/1/history', headers: { ...keyHeader(stack.keys.alice), ...headers } });
    expect(history.status).toBe(403);
    expect(history.text).not.toContain('bob-private-reading');
    expect((await command(headers)).status).toBe(403);
    expect(executed).toEqual([]);
  });

  it('method-override headers in one word (X-HTTPMethod, X-HTTP-MethodOverride, X-Verb) and a _method cookie reach neither the request nor the lookup', async () => {
    const r = await send(stack.sidecar.proxyPort, {
      path: '/v1/devices/1/history',
      headers: {
        ...keyHeader(stack.keys.alice),
        'x-httpmethod': 'DELETE',
        'x-http-methodoverride': 'DELETE',
        'x-verb': 'DELETE',
        'x-http-verb': 'DELETE',
        cookie: 'session=s1; _method=DELETE; _METHOD=DELETE',
      },
    });
    expect(r.status).toBe(200);
    expect(stack.backend.received.length).toBeGreaterThan(1);
    for (const x of stack.backend.received) {
      for (const name of ['x-httpmethod', 'x-http-methodoverride', 'x-verb', 'x-http-verb']) expect(x.headers[name]).toBeUndefined();
      expect(x.headers.cookie).toBe('session=s1');
    }
  });
});
