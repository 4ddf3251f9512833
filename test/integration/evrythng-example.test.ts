import { spawnSync } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { key, send } from '../helpers/http.ts';
import { BIN, POLICIES, ROOT, type Sidecar, startSidecar, tempStore } from '../helpers/sidecar.ts';

// policies/examples/evrythng.yaml against a small backend of EVRYTHNG's shape (bare arrays,
// customFields), with an operator key and an access token limited to factories f1 and f2.
interface Item {
  id: string;
  name: string;
  customFields: { factoryId: string };
}
const places: Item[] = ['f1', 'f2', 'f3'].map((f) => ({ id: `pl_${f}`, name: `Plant ${f}`, customFields: { factoryId: f } }));
const thngs: Item[] = ['f1', 'f2', 'f3'].map((f) => ({ id: `th_${f}`, name: `Pallet ${f}`, customFields: { factoryId: f } }));
const received: Array<{ method: string; url: string }> = [];
let ignoreFilter = false;

function backend(): Server {
  return createServer((req: IncomingMessage, res) => {
    received.push({ method: req.method!, url: req.url! });
    const url = new URL(req.url!, 'http://x');
    const [, collection, id] = url.pathname.split('/');
    const items = collection === 'places' ? places : collection === 'thngs' ? thngs : collection === 'products' ? [] : undefined;
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (items === undefined) return reply(404, { errors: ['not found'] });
    if (id === undefined) {
      const wanted = url.searchParams.get('factoryId')?.split(',');
      return reply(200, ignoreFilter || wanted === undefined ? items : items.filter((i) => wanted.includes(i.customFields.factoryId)));
    }
    const item = items.find((i) => i.id === id);
    return item === undefined ? reply(404, { errors: ['not found'] }) : reply(200, item);
  });
}

function createKey(store: string, ...args: string[]): string {
  const r = spawnSync(process.execPath, [BIN, 'keys', 'create', '--store', store, '--json', ...args], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout).key as string;
}

let server: Server;
let sidecar: Sidecar;
let operator: string;
let token: string;
beforeAll(async () => {
  server = backend();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const store = tempStore();
  operator = createKey(store, '--type', 'operator');
  token = createKey(store, '--type', 'access-token', '--role', 'factory-reader', '--condition', 'factoryId:f1', '--condition', 'factoryId:f2');
  sidecar = await startSidecar({ upstream: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, store, policies: join(POLICIES, 'examples') });
});
afterAll(async () => {
  await sidecar.stop('SIGKILL');
  server.close();
});
beforeEach(() => {
  received.length = 0;
  ignoreFilter = false;
});

describe('EVRYTHNG example: permissions and conditions', () => {
  it('the operator key has full access', async () => {
    expect((await send(sidecar.url, 'GET', '/thngs', { headers: key(operator) })).json).toHaveLength(3);
    expect((await send(sidecar.url, 'GET', '/places/pl_f3', { headers: key(operator) })).status).toBe(200);
  });

  it('the access token lists places of f1 and f2: the filter is set, any-of', async () => {
    const r = await send(sidecar.url, 'GET', '/places?factoryId=f3', { headers: key(token) });
    expect(r.status).toBe(200);
    expect(r.json.map((p: Item) => p.id)).toEqual(['pl_f1', 'pl_f2']);
    expect(received.map((x) => x.url)).toEqual(['/places?factoryId=f1,f2']);
  });

  it('and never sees f3 even when the backend ignores the filter', async () => {
    ignoreFilter = true;
    const r = await send(sidecar.url, 'GET', '/places', { headers: key(token) });
    expect(r.json.map((p: Item) => p.customFields.factoryId).sort()).toEqual(['f1', 'f2']);
    expect(r.text).not.toContain('f3');
  });

  it('reads a place of f2 but not of f3 (checked on the response)', async () => {
    expect((await send(sidecar.url, 'GET', '/places/pl_f2', { headers: key(token) })).status).toBe(200);
    const r = await send(sidecar.url, 'GET', '/places/pl_f3', { headers: key(token) });
    expect(r.status).toBe(403);
    expect(r.text).not.toContain('Plant f3');
  });

  it('reads a thng of f1 but not of f3 (proven by lookup before forwarding)', async () => {
    expect((await send(sidecar.url, 'GET', '/thngs/th_f1', { headers: key(token) })).status).toBe(200);
    received.length = 0;
    expect((await send(sidecar.url, 'GET', '/thngs/th_f3', { headers: key(token) })).status).toBe(403);
    expect(received.every((x) => x.url === '/thngs/th_f3')).toBe(true); // only the attribute lookup
  });

  it('permissions: no thngs:list, no products, no writes', async () => {
    for (const [method, path] of [
      ['GET', '/thngs'],
      ['GET', '/products'],
      ['PUT', '/places/pl_f1'],
      ['DELETE', '/thngs/th_f1'],
      ['GET', '/factories/f1'],
    ] as const) {
      const r = await send(sidecar.url, method, path, { headers: key(token) });
      expect(r.status).toBe(403);
    }
    expect(received).toHaveLength(0);
  });
});
