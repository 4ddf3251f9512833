// A policy file rewritten in place in two writes, under load: the half-written version in
// between must never be applied. A cut that leaves an incomplete policy (no roles, no key
// types) is refused by validation; a cut that leaves a valid one (a role without its
// conditions: more power, not less) is never read, because a file is compiled only once it
// reads the same twice SETTLE_MS apart.
import { closeSync, ftruncateSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type DemoBackend, startDemoBackend } from '../../src/demo/backend.ts';
import { SETTLE_MS } from '../../src/policy/watch.ts';
import { key, send } from '../helpers/http.ts';
import { POLICIES, type Sidecar, seedKeys, startSidecar, type TestKeys, tempDir, tempStore } from '../helpers/sidecar.ts';

const ORIGINAL = readFileSync(join(POLICIES, 'texture.yaml'), 'utf8');

let backend: DemoBackend | undefined;
let sidecar: Sidecar | undefined;
afterEach(async () => {
  await sidecar?.stop('SIGKILL');
  await backend?.close();
});

async function boot(policy: string): Promise<{ keys: TestKeys; file: string }> {
  const dir = tempDir('kg-torn-');
  const file = join(dir, 'texture.yaml');
  writeFileSync(file, policy);
  backend = await startDemoBackend();
  const store = tempStore();
  const keys = await seedKeys(store);
  sidecar = await startSidecar({ upstream: backend.url, store, policies: dir });
  return { keys, file };
}

/**
 * Rewrites `file` in place (same inode, as `>` or an editor without atomic save does), in
 * two writes `gapMs` apart; returns how far apart they really were.
 */
async function rewriteInTwoWrites(file: string, first: string, second: string, gapMs: number): Promise<number> {
  const fd = openSync(file, 'r+');
  ftruncateSync(fd, 0);
  writeSync(fd, first, 0);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, gapMs));
  writeSync(fd, second, Buffer.byteLength(first));
  const gap = performance.now() - t0;
  closeSync(fd);
  return gap;
}

interface Tally {
  readonly statuses: Map<string, number>;
  stop(): Promise<void>;
}

/** Eight clients in a loop: alice's device list and device, a server key's sites; every answer counted. */
function load(keys: TestKeys, onAlice?: (r: { status: number; json: any }) => void): Tally {
  const statuses = new Map<string, number>();
  let running = true;
  const requests: Array<[string, string]> = [
    [keys.alice, '/v1/devices'],
    [keys.alice, '/v1/devices/dev_alice_1'],
    [keys.server, '/v1/sites'],
  ];
  const client = async (i: number): Promise<void> => {
    for (let n = i; running; n++) {
      const [k, path] = requests[n % requests.length]!;
      const r = await send(sidecar!.url, 'GET', path, { headers: key(k) });
      const label = `${path} ${r.status}`;
      statuses.set(label, (statuses.get(label) ?? 0) + 1);
      if (k === keys.alice) onAlice?.(r);
    }
  };
  const clients = Array.from({ length: 8 }, (_, i) => client(i));
  return {
    statuses,
    async stop() {
      running = false;
      await Promise.all(clients);
    },
  };
}

async function metric(name: string): Promise<number> {
  const text = (await send(sidecar!.opsUrl, 'GET', '/metrics')).text;
  const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => '\\' + c)} (\\d+)`, 'm').exec(text);
  return m === null ? 0 : Number(m[1]);
}

async function until(check: () => Promise<boolean>, ms = 8000): Promise<void> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > ms) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const nonOk = (t: Tally): string[] => [...t.statuses].filter(([label]) => !label.endsWith(' 200')).map(([label, n]) => `${label} ×${n}`);

describe('a policy rewritten in place in two writes, under load', () => {
  it('cut before roles: (no roles, no key types) for a second: refused as incomplete, no 403 burst, then the whole file loads', async () => {
    const { keys, file } = await boot(ORIGINAL);
    const edited = ORIGINAL + '\n# edited\n';
    const cut = edited.indexOf('\nroles:') + 1;
    const tally = load(keys);
    await new Promise((r) => setTimeout(r, 300));
    await rewriteInTwoWrites(file, edited.slice(0, cut), edited.slice(cut), 1_000);
    await until(async () => (await metric('keygate_policy_reloads_total{result="success"}')) === 1);
    await new Promise((r) => setTimeout(r, 300));
    await tally.stop();
    expect(nonOk(tally), JSON.stringify([...tally.statuses])).toEqual([]);
    expect([...tally.statuses.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(100);
    // The half-written version was read (it sat unchanged for a second) and refused.
    expect(await metric('keygate_policy_reloads_total{result="failure"}')).toBeGreaterThanOrEqual(1);
    const failed = sidecar!.logs.find((l) => l.msg === 'policy reload failed; keeping the last good policy');
    expect(String((failed?.errors as string[] | undefined)?.join('\n'))).toMatch(/keyTypes: no entry for server, connect, scoped, operator, access-token/);
  });

  it(`cut before a role's conditions: (a valid, wider policy) for 250 ms, less than ${SETTLE_MS} ms: never applied`, async () => {
    // keyTypes first, so that the cut leaves a complete policy whose device-owner role has
    // no conditions: every scoped key would list every user's devices.
    const keyTypes = ORIGINAL.slice(ORIGINAL.indexOf('keyTypes:'));
    const reordered = ORIGINAL.replace(keyTypes, '').replace('version: 1\n', `version: 1\n\n${keyTypes}\n`);
    expect(reordered.trimEnd().endsWith("referenceId: '{key.referenceId}'")).toBe(true);
    const { keys, file } = await boot(reordered);
    const edited = reordered + '\n# edited\n';
    const cut = edited.lastIndexOf('    conditions:');
    let foreign = 0;
    const tally = load(keys, (r) => {
      const items = (r.json?.data ?? [r.json]) as Array<{ referenceId?: string }>;
      foreign += items.filter((d) => d?.referenceId !== undefined && d.referenceId !== 'alice').length;
    });
    await new Promise((r) => setTimeout(r, 300));
    // Longer than the file watcher's debounce (150 ms), well inside SETTLE_MS.
    const gap = await rewriteInTwoWrites(file, edited.slice(0, cut), edited.slice(cut), 250);
    expect(gap, 'this machine delayed the second write past the settle interval: the premise of the test').toBeLessThan(SETTLE_MS);
    await until(async () => (await metric('keygate_policy_reloads_total{result="success"}')) === 1);
    await new Promise((r) => setTimeout(r, 300));
    await tally.stop();
    expect(foreign, 'devices of other users answered to alice').toBe(0);
    const unfiltered = backend!.received.filter((r) => r.path === '/v1/devices' && r.headers['x-keygate-reference-id'] === 'alice' && r.query.getAll('referenceId').join(',') !== 'alice');
    expect(unfiltered.length, "alice's lists forwarded without her filter").toBe(0);
    expect(nonOk(tally)).toEqual([]);
    expect(await metric('keygate_policy_reloads_total{result="failure"}')).toBe(0);
    await new Promise((r) => setTimeout(r, SETTLE_MS + 200));
    expect(await metric('keygate_policy_reloads_total{result="success"}')).toBe(1);
  });
});
