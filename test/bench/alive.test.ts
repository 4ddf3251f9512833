import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedBenchKeys } from '../../bench/keys.ts';
import { runLoad } from '../../bench/load.ts';
import { probe } from '../../bench/probe.ts';
import { type LoadCase, onlyOwnItems } from '../../bench/scenarios.ts';
import { stopAll } from '../../bench/spawn.ts';
import { startHttpProxy3, startKeygate, startUndiciForwarder, type Target } from '../../bench/targets.ts';
import { type DemoBackend, startDemoBackend } from '../../src/demo/backend.ts';

const DEVICES_PER_USER = 500;
/** The backend answers this late, so every request of a closing run is still in flight. */
const BACKEND_DELAY_MS = 50;
/** More than any target's pool of backend connections (128): wedging them all is what failed. */
const ABANDONED = 300;

function allDevices(body: string): string | undefined {
  const data = (JSON.parse(body) as { data?: unknown[] }).data;
  return Array.isArray(data) && data.length === 2 * DEVICES_PER_USER ? undefined : `expected ${2 * DEVICES_PER_USER} devices`;
}

/** Connections that send one request each and are destroyed before the backend answers it. */
async function abandon(c: LoadCase, n: number): Promise<void> {
  const { port } = new URL(c.target.url);
  const head = Object.entries(c.headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const sockets = Array.from({ length: n }, () => {
    const s = connect(Number(port), '127.0.0.1');
    s.on('error', () => {});
    s.write(`${c.method} ${c.path} HTTP/1.1\r\nHost: bench\r\n${head}\r\n`);
    return s;
  });
  await new Promise((r) => setTimeout(r, BACKEND_DELAY_MS / 5));
  for (const s of sockets) s.destroy();
  // Let the backend answer into the closed connections.
  await new Promise((r) => setTimeout(r, BACKEND_DELAY_MS * 4));
}

// A load run ends by closing its connections with requests in flight. A proxy that then
// pauses the backend's answer for a client that is gone (waiting for a 'drain' that never
// comes) loses a backend connection each time and, once its pool is used up, answers
// nothing: the bench would go on comparing Keygate with a dead ceiling. Every target, the
// real Keygate process among them, must still answer after both kinds of abandonment.
describe('targets stay alive when clients leave with requests in flight', () => {
  let backend: DemoBackend;
  const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-alive-'));
  const cases: LoadCase[] = [];

  beforeAll(async () => {
    backend = await startDemoBackend({ port: 0, devicesPerUser: DEVICES_PER_USER, record: false });
    backend.behaviour.delayMs = BACKEND_DELAY_MS;
    const keys = await seedBenchKeys(join(dir, 'keys.db'));
    const [undici, httpProxy3, keygate] = await Promise.all([
      startUndiciForwarder(backend.url),
      startHttpProxy3(backend.url),
      startKeygate({ upstream: backend.url, storePath: join(dir, 'keys.db'), workers: 1 }),
    ]);
    const list = (id: string, target: Target, path: string, headers: Record<string, string>, check: LoadCase['check']): LoadCase => ({
      id,
      label: id,
      kind: 'baseline',
      target,
      method: 'GET',
      path,
      headers,
      expectStatus: 200,
      check,
    });
    const alice = `/v1/devices?referenceId=alice&perPage=${2 * DEVICES_PER_USER}`;
    cases.push(
      list('bare undici forwarder', undici, alice, {}, onlyOwnItems('alice')),
      list('bare http-proxy-3', httpProxy3, alice, {}, onlyOwnItems('alice')),
      // Streamed to the client (server key) and buffered for the check (scoped key).
      list('Keygate, streamed answer', keygate, `/v1/devices?perPage=${2 * DEVICES_PER_USER}`, { 'texture-api-key': keys.server }, allDevices),
      list('Keygate, checked answer', keygate, `/v1/devices?perPage=${2 * DEVICES_PER_USER}`, { 'texture-api-key': keys.alice }, onlyOwnItems('alice')),
    );
    for (const c of cases) expect(await probe(c), `${c.label} before`).toBeUndefined();
  }, 60_000);

  afterAll(async () => {
    await stopAll();
    await backend?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('after a load run that ends with its connections closed mid-request', async () => {
    for (const c of cases) await runLoad(c, { connections: 200, duration: 1, backendPids: [] });
    for (const c of cases) expect(await probe(c), c.label).toBeUndefined();
  }, 60_000);

  it(`after ${ABANDONED} connections closed before the backend answered`, async () => {
    for (const c of cases) await abandon(c, ABANDONED);
    for (const c of cases) expect(await probe(c), c.label).toBeUndefined();
  }, 60_000);
});
