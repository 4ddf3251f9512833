import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLoad } from '../../bench/load.ts';
import type { LoadCase } from '../../bench/scenarios.ts';
import { parseKey } from '../../src/keys/key-format.ts';

// The 401 flood's promise is "a new well-formed key on every request". The bench writes
// each key over a placeholder in a request autocannon built once; this checks, at a real
// server, that every request arrives with its own key, intact, and with the rest of the
// request unchanged.
describe('bench: fresh key on every request', () => {
  const seen: string[] = [];
  const paths = new Set<string>();
  let server: Server;
  let url: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(String(req.headers['texture-api-key']));
      paths.add(`${req.method} ${req.url} ${req.headers.host}`);
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{"status":401}}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const floodCase = (check: LoadCase['check']): LoadCase => ({
    id: 's5',
    label: 'fresh keys',
    kind: 'keygate',
    scenario: 5,
    target: { url, pids: [process.pid], stop: async () => {} },
    method: 'GET',
    path: '/v1/devices',
    headers: {},
    freshKey: true,
    expectStatus: 401,
    check,
  });

  it('sends 2,000 distinct well-formed keys over 16 connections', async () => {
    const flood = floodCase((b) => (b.includes('401') ? undefined : 'not a 401'));
    const m = await runLoad(flood, { connections: 16, duration: 10, amount: 2000, backendPids: [] });

    expect(m.errors, m.errorSamples.join(' | ')).toBe(0);
    expect(m.requests).toBe(2000);
    expect(seen).toHaveLength(2000);
    expect(new Set(seen).size).toBe(2000);
    for (const key of seen) expect(parseKey(key), key).toBe('api_');
    expect([...paths]).toEqual([`GET /v1/devices 127.0.0.1:${new URL(url).port}`]);
  });

  it('fails the run when the server-side count shows repeated keys', async () => {
    const flood = floodCase(() => undefined);
    // A store that answered only 10 queries for 200 "fresh" keys: keys were reused.
    let calls = 0;
    const m = await runLoad(flood, { connections: 4, duration: 10, amount: 200, backendPids: [], storeQueries: async () => (calls++ === 0 ? 0 : 10) });
    expect(m.errors).toBeGreaterThan(0);
    expect(m.errorSamples.join(' ')).toMatch(/10 store queries for 200 fresh keys/);
  });
});
