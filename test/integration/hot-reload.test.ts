import { copyFileSync, mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type DemoBackend, startDemoBackend } from '../../src/demo/backend.ts';
import { key, send } from '../helpers/http.ts';
import { POLICIES, type Sidecar, seedKeys, startSidecar, tempDir, tempStore } from '../helpers/sidecar.ts';

const ORIGINAL = readFileSync(join(POLICIES, 'texture.yaml'), 'utf8');
const WITH_SITES = ORIGINAL.replace("permissions: ['devices:list,read', 'commands:command,read']", "permissions: ['devices:list,read', 'commands:command,read', 'sites:list']");
const WITHOUT_READ = ORIGINAL.replace("permissions: ['devices:list,read', 'commands:command,read']", "permissions: ['devices:list', 'commands:command,read']");
const ALSO_BOB = ORIGINAL.replace("referenceId: '{key.referenceId}'", "referenceId: ['{key.referenceId}', bob]");
const BROKEN = ORIGINAL.replace("permissions: ['devices:list,read', 'commands:command,read']", "permissions: ['devices:list,read', 'gadgets:read']");

let backend: DemoBackend | undefined;
let sidecar: Sidecar | undefined;
afterEach(async () => {
  await sidecar?.stop('SIGKILL');
  await backend?.close();
});

async function boot(dir: string, args: string[] = []) {
  backend = await startDemoBackend();
  const store = tempStore();
  const keys = await seedKeys(store);
  sidecar = await startSidecar({ upstream: backend.url, store, policies: dir, args });
  return keys;
}

async function metric(name: string): Promise<number> {
  const text = (await send(sidecar!.opsUrl, 'GET', '/metrics')).text;
  const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => '\\' + c)} (\\d+)`, 'm').exec(text);
  return m === null ? 0 : Number(m[1]);
}

async function until(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > ms) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('hot reload', () => {
  it('an edited policy file is validated, compiled and swapped in', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'texture.yaml'), ORIGINAL);
    const keys = await boot(dir);
    expect((await send(sidecar!.url, 'GET', '/v1/sites', { headers: key(keys.alice) })).status).toBe(403);
    writeFileSync(join(dir, 'texture.yaml'), WITH_SITES);
    await until(async () => (await send(sidecar!.url, 'GET', '/v1/sites', { headers: key(keys.alice) })).status === 200);
    expect(await metric('keygate_policy_reloads_total{result="success"}')).toBe(1);
    expect(sidecar!.logs.some((l) => l.msg === 'policy reloaded')).toBe(true);
  });

  // A warm request reuses the conditions resolved for its key and role (authorize.ts); a
  // reload compiles new roles, so the same cached key must get the new role's filter.
  it('a changed role condition applies to a key already in the cache', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'texture.yaml'), ORIGINAL);
    const keys = await boot(dir);
    const owners = async () => {
      const r = await send(sidecar!.url, 'GET', '/v1/devices', { headers: key(keys.alice) });
      expect(r.status).toBe(200);
      return [...new Set((r.json.data as Array<{ referenceId: string }>).map((d) => d.referenceId))].sort().join(',');
    };
    expect(await owners()).toBe('alice');
    // Checked as soon as the reload is counted (the swap comes first), well within the key
    // cache's 2 s: the principal is the cached one, so only the new role can change the answer.
    writeFileSync(join(dir, 'texture.yaml'), ALSO_BOB);
    await until(async () => (await metric('keygate_policy_reloads_total{result="success"}')) === 1);
    expect(await owners()).toBe('alice,bob');
    writeFileSync(join(dir, 'texture.yaml'), ORIGINAL);
    await until(async () => (await metric('keygate_policy_reloads_total{result="success"}')) === 2);
    expect(await owners()).toBe('alice');
  });

  it('a failed reload keeps the last good policy and shows in /readyz and metrics (invariant 8)', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'texture.yaml'), ORIGINAL);
    const keys = await boot(dir);
    writeFileSync(join(dir, 'texture.yaml'), BROKEN);
    await until(async () => (await metric('keygate_policy_reloads_total{result="failure"}')) >= 1);
    const ready = await send(sidecar!.opsUrl, 'GET', '/readyz');
    expect(ready.json.policy.lastReload.ok).toBe(false);
    expect(ready.json.policy.lastReload.errors[0]).toMatch(/texture\.yaml:\d+:\d+ permission "gadgets:read": unknown resource "gadgets"/);
    // The old rules still hold: alice reads her device, and never bob's.
    expect((await send(sidecar!.url, 'GET', '/v1/devices/dev_alice_1', { headers: key(keys.alice) })).status).toBe(200);
    expect((await send(sidecar!.url, 'GET', '/v1/devices/dev_bob_1', { headers: key(keys.alice) })).status).toBe(403);
    expect(sidecar!.logs.some((l) => l.msg === 'policy reload failed; keeping the last good policy')).toBe(true);
    // Rolled back to the very file in force: nothing to swap, and /readyz no longer reports the failure.
    writeFileSync(join(dir, 'texture.yaml'), ORIGINAL);
    await until(async () => (await send(sidecar!.opsUrl, 'GET', '/readyz')).json.policy.lastReload.ok === true);
    expect(sidecar!.logs.some((l) => l.msg === 'policy files are back to the policy in force')).toBe(true);
  });

  it('SIGHUP reloads when watching is off', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'texture.yaml'), ORIGINAL);
    const keys = await boot(dir, ['--watch-policies', 'false']);
    writeFileSync(join(dir, 'texture.yaml'), WITH_SITES);
    await new Promise((r) => setTimeout(r, 400));
    expect((await send(sidecar!.url, 'GET', '/v1/sites', { headers: key(keys.alice) })).status).toBe(403);
    sidecar!.proc.kill('SIGHUP');
    await until(async () => (await send(sidecar!.url, 'GET', '/v1/sites', { headers: key(keys.alice) })).status === 200);
  });

  it('a Kubernetes ConfigMap update (atomic ..data symlink swap) is picked up once, files read once', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, '..2026_11_23_a'));
    writeFileSync(join(dir, '..2026_11_23_a', 'texture.yaml'), ORIGINAL);
    symlinkSync('..2026_11_23_a', join(dir, '..data'));
    symlinkSync('..data/texture.yaml', join(dir, 'texture.yaml'));
    const keys = await boot(dir);
    expect((await send(sidecar!.opsUrl, 'GET', '/readyz')).json.policy.files).toHaveLength(1);
    // kubelet: write the new version beside the old, then rename a new link over ..data.
    mkdirSync(join(dir, '..2026_11_23_b'));
    writeFileSync(join(dir, '..2026_11_23_b', 'texture.yaml'), WITH_SITES);
    symlinkSync('..2026_11_23_b', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    await until(async () => (await send(sidecar!.url, 'GET', '/v1/sites', { headers: key(keys.alice) })).status === 200);
    await new Promise((r) => setTimeout(r, 400));
    expect(await metric('keygate_policy_reloads_total{result="success"}')).toBe(1);
    const files = (await send(sidecar!.opsUrl, 'GET', '/readyz')).json.policy.files as string[];
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/texture\.yaml$/);
  });

  it('one policy file saved by rename (as editors and mv do), again and again: every version is applied', async () => {
    const dir = tempDir();
    const file = join(dir, 'texture.yaml');
    writeFileSync(file, ORIGINAL);
    const keys = await boot(file);
    const sites = async (): Promise<number> => (await send(sidecar!.url, 'GET', '/v1/sites', { headers: key(keys.alice) })).status;
    const device = async (): Promise<number> => (await send(sidecar!.url, 'GET', '/v1/devices/dev_alice_1', { headers: key(keys.alice) })).status;
    const save = (text: string): void => {
      writeFileSync(`${file}.tmp`, text);
      renameSync(`${file}.tmp`, file);
    };
    save(WITH_SITES);
    await until(async () => (await sites()) === 200);
    // The second rename replaces the file the first one put there: fs.watch on it would be silent now.
    save(WITHOUT_READ);
    await until(async () => (await sites()) === 403 && (await device()) === 403, 8000);
    save(ORIGINAL);
    await until(async () => (await device()) === 200, 8000);
  });

  it('a --policies directory symlink swapped to another release is picked up', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'v1'));
    mkdirSync(join(dir, 'v2'));
    writeFileSync(join(dir, 'v1', 'texture.yaml'), ORIGINAL);
    writeFileSync(join(dir, 'v2', 'texture.yaml'), WITHOUT_READ);
    symlinkSync('v1', join(dir, 'current'));
    const keys = await boot(join(dir, 'current'));
    const device = async (): Promise<number> => (await send(sidecar!.url, 'GET', '/v1/devices/dev_alice_1', { headers: key(keys.alice) })).status;
    expect(await device()).toBe(200);
    // ln -sfn v2 current, done atomically: a new link renamed over the old one.
    symlinkSync('v2', join(dir, 'current.new'));
    renameSync(join(dir, 'current.new'), join(dir, 'current'));
    await until(async () => (await device()) === 403, 8000);
    // A later edit in the new release is seen too.
    writeFileSync(join(dir, 'v2', 'texture.yaml'), ORIGINAL);
    await until(async () => (await device()) === 200, 8000);
  });

  it('requests in flight finish under the old policy; new ones get the new one', async () => {
    const dir = tempDir();
    copyFileSync(join(POLICIES, 'texture.yaml'), join(dir, 'texture.yaml'));
    const keys = await boot(dir);
    // Warm the ownership cache, then slow the backend so the next read is in flight during the swap.
    expect((await send(sidecar!.url, 'GET', '/v1/devices/dev_alice_1/history', { headers: key(keys.alice) })).status).toBe(200);
    backend!.behaviour.delayMs = 1500;
    const inflight = send(sidecar!.url, 'GET', '/v1/devices/dev_alice_1/history', { headers: key(keys.alice) });
    await new Promise((r) => setTimeout(r, 200));
    writeFileSync(join(dir, 'texture.yaml'), WITHOUT_READ);
    await until(async () => (await metric('keygate_policy_reloads_total{result="success"}')) === 1);
    backend!.behaviour.delayMs = 0;
    expect((await send(sidecar!.url, 'GET', '/v1/devices/dev_alice_1/history', { headers: key(keys.alice) })).status).toBe(403);
    expect((await inflight).status).toBe(200);
  });
});
