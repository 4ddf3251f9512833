// What an embedded `keygate serve` (SQLite store, no Redis) carries on its heap. Every full
// collection marks all of it again, and under a load of large answers V8 runs several a
// second (src/server/v8-flags.ts), so code that is loaded but never used costs CPU on
// every request. Each module named here was found loaded, measured and removed:
// - Node's bundled undici (2.4 MB): loaded by an ESM import of node:http (its WebSocket
//   getter) or by undici's package entry (its cookies module touches globalThis.Headers);
// - undici's fetch, WebSocket and cache code (3.6 MB): Keygate uses its Pool alone;
// - the Redis client (5.5 MB) and the PostgreSQL client (1.4 MB): loaded only when a
//   --rate-limit-store or a postgres:// store names them.

import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDemoBackend } from '../../src/demo/backend.ts';
import { key, send } from '../helpers/http.ts';
import { ROOT, type Sidecar, seedKeys, startSidecar, tempStore } from '../helpers/sidecar.ts';

let sidecar: Sidecar;
let loaded: { internal: string[]; packages: string[] };
let stopBackend: () => Promise<void>;

beforeAll(async () => {
  const backend = await startDemoBackend({ port: 0 });
  stopBackend = () => backend.close();
  const store = tempStore();
  const keys = await seedKeys(store);
  sidecar = await startSidecar({ upstream: backend.url, store, env: { NODE_OPTIONS: `--require ${join(ROOT, 'test/fixtures/loaded-modules.cjs')}` } });
  // A forwarded, checked request and a served one, so what they load is in the list.
  expect((await send(sidecar.url, 'GET', '/v1/devices', { headers: key(keys.alice) })).status).toBe(200);
  expect((await send(sidecar.url, 'GET', '/v1/sites', { headers: key(keys.alice) })).status).toBe(403);
  await sidecar.stop();
  const line = sidecar
    .stderr()
    .split('\n')
    .find((l) => l.startsWith('LOADED-MODULES '));
  expect(line, 'the preload reported at exit').toBeDefined();
  loaded = JSON.parse(line!.slice('LOADED-MODULES '.length));
});

afterAll(async () => {
  await stopBackend?.();
});

it('the report is real: it names what serving does load', () => {
  expect(loaded.packages.some((p) => p.startsWith('undici/lib/dispatcher/pool.js'))).toBe(true);
  expect(loaded.internal).toContain('http');
});

it("does not load Node's bundled undici", () => {
  expect(loaded.internal.filter((m) => m.includes('deps/undici'))).toEqual([]);
});

it("loads undici's Pool without its fetch, WebSocket or cache code", () => {
  expect(loaded.packages.filter((p) => /^undici\/(index\.js|lib\/web\/)/.test(p))).toEqual([]);
});

it('loads neither the Redis nor the PostgreSQL client', () => {
  expect(loaded.packages.filter((p) => p.startsWith('@redis/') || p.startsWith('pg/') || p.startsWith('pg-'))).toEqual([]);
});
