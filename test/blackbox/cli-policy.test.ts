// CLI contract + invariants 6 and 8 (policy side): keys hashed and shown once, odd
// reference ids, policy check, a failed policy reload keeps the last good policy.
import { execFile } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Backend, BIN, createKey, createKeySet, type KeySet, keyHeader, POLICIES, ROOT, type Sidecar, send, sleep, startBackend, startSidecar } from './harness.ts';

const execFileP = promisify(execFile);

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [BIN, ...args], { cwd: ROOT });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

let backend: Backend;
let keys: KeySet;

beforeAll(async () => {
  backend = await startBackend();
  keys = await createKeySet();
});
afterAll(async () => {
  await backend?.close();
});

describe('keys: hashed at rest, plaintext shown once', () => {
  test('keys list (json and table) never prints a secret', async () => {
    const store = ['--store', keys.store];
    const outs = [await cli(['keys', 'list', '--json', ...store]), await cli(['keys', 'list', ...store])];
    for (const o of outs) {
      expect(o.code, o.stderr).toBe(0);
      for (const k of [keys.server, keys.connect, keys.alice, keys.bob]) {
        expect(o.stdout + o.stderr).not.toContain(k.key.slice(k.key.indexOf('_') + 1));
        expect(o.stdout).toContain(k.id);
      }
    }
  });

  test('the store file does not hold any plaintext secret', () => {
    const dir = keys.store.slice('sqlite:'.length).replace(/[^/]+$/, '');
    for (const f of readdirSync(dir)) {
      const bytes = readFileSync(join(dir, f));
      for (const k of [keys.server, keys.connect, keys.alice, keys.bob]) {
        expect(bytes.includes(Buffer.from(k.key.slice(k.key.indexOf('_') + 1))), `${f} holds ${k.type} secret`).toBe(false);
      }
    }
  });

  test('key prefixes match the key table', () => {
    expect(keys.server.key.startsWith('api_')).toBe(true);
    expect(keys.connect.key.startsWith('api_')).toBe(true);
    expect(keys.alice.key.startsWith('scoped_')).toBe(true);
    expect(keys.alice.referenceId).toBe('alice');
  });

  test('scoped key without --reference-id is refused by the CLI', async () => {
    const r = await cli(['keys', 'create', '--type', 'scoped', '--store', keys.store, '--json']);
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toMatch(/scoped_/);
  });

  test('revoking an unknown id fails (non-zero exit)', async () => {
    const r = await cli(['keys', 'revoke', 'key_doesnotexist', '--store', keys.store]);
    expect(r.code).not.toBe(0);
  });
});

describe('reference ids with special characters', () => {
  let sidecar: Sidecar;
  beforeAll(async () => {
    sidecar = await startSidecar({ upstream: backend.url, store: keys.store });
  });
  afterAll(async () => {
    await sidecar?.stop();
  });

  test('referenceId "alice&referenceId=bob" is injected as ONE encoded value', async () => {
    const k = await createKey(keys.store, 'scoped', 'alice&referenceId=bob');
    backend.reset();
    const r = await send(sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(k) });
    expect(r.status).toBe(200);
    const sp = new URL(backend.received[0]!.url, 'http://x').searchParams;
    expect(sp.getAll('referenceId')).toEqual(['alice&referenceId=bob']);
    expect(r.text).not.toMatch(/BOB|ALICE/);
  });

  test('a referenceId that cannot travel in a header is refused at creation, or requests fail without blaming the backend (not 502)', async () => {
    const r = await cli(['keys', 'create', '--type', 'scoped', '--reference-id', 'alice\r\nX-Evil: 1', '--store', keys.store, '--json']);
    if (r.code !== 0) return; // refused at creation: fine
    const k = JSON.parse(r.stdout.trim()) as { key: string };
    backend.reset();
    const res = await send(sidecar.proxyPort, { path: '/v1/devices', headers: { 'texture-api-key': k.key } });
    // never header injection, never alice's or anyone's data
    for (const x of backend.received) expect(x.headers['x-evil']).toBeUndefined();
    expect(res.text).not.toMatch(/ALICE|BOB/);
    // "Backend unreachable → 502": the backend was reachable, so 502 misreports the failure
    expect(res.status, `${res.status} ${res.text}`).not.toBe(502);
  });

  test('ownership compare is exact: device with referenceId "ALICE" or "alice " is not alice\'s', async () => {
    // uses devices the backend does not have → lookups 404 → refused; then a synthetic check via the list filter
    const k = await createKey(keys.store, 'scoped', 'ALICE');
    backend.reset();
    const r = await send(sidecar.proxyPort, { path: '/v1/devices/dev-alice-1', headers: keyHeader(k) });
    expect(r.status).toBe(403);
    expect(r.text).not.toMatch(/ALICE_SECRET/);
  });
});

describe('policy check', () => {
  test('shipped policies pass `keygate policy check`', async () => {
    const r = await cli(['policy', 'check', POLICIES]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  test('a broken policy fails with exit 1 and names file:line:col', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kg-bb-pol-'));
    writeFileSync(join(dir, 'broken.yaml'), 'roles:\n  scoped:\n    - allow: GET /v1/devices\n      set: { query: { referenceId: "{key.referenceId}" }\n    - allow: [oops\n');
    const r = await cli(['policy', 'check', dir]);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/broken\.yaml:\d+:\d+/);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('hot reload: a failed reload keeps the last good policy', () => {
  let dir: string;
  let sidecar: Sidecar;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kg-bb-live-'));
    cpSync(POLICIES, dir, { recursive: true });
    // ensure the copy is valid before we rely on it (others may be editing policies/ concurrently)
    const chk = await cli(['policy', 'check', dir]);
    if (chk.code !== 0) throw new Error(`copied policies do not check: ${chk.stdout}${chk.stderr}`);
    sidecar = await startSidecar({ upstream: backend.url, store: keys.store, policies: dir });
  });
  afterAll(async () => {
    await sidecar?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function behaves() {
    backend.reset();
    const list = await send(sidecar.proxyPort, { path: '/v1/devices?referenceId=bob', headers: keyHeader(keys.alice) });
    const sites = await send(sidecar.proxyPort, { path: '/v1/sites', headers: keyHeader(keys.alice) });
    const foreign = await send(sidecar.proxyPort, { path: '/v1/devices/dev-bob-1', headers: keyHeader(keys.alice) });
    const conn = await send(sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(keys.connect) });
    const server = await send(sidecar.proxyPort, { path: '/v1/sites', headers: keyHeader(keys.server) });
    return { list, sites, foreign, conn, server, received: backend.received.map((x) => x.url) };
  }

  test('corrupting, emptying and deleting the live policy never opens (or closes) anything', async () => {
    const before = await behaves();
    expect(before.list.status).toBe(200);
    expect(before.sites.status).toBe(403);

    const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f) && !f.includes('.test.'));
    const main = join(dir, files.find((f) => f === 'texture.yaml') ?? files[0]!);
    const original = readFileSync(main, 'utf8');

    const attempts: Array<[string, () => void]> = [
      ['syntax error appended', () => appendFileSync(main, '\n  - allow: [unclosed\n')],
      ['scoped allow-all plus an error later in the file', () => writeFileSync(main, 'roles:\n  scoped: [ { allow: "*" } ]\n' + original + '\nnot valid: [\n')],
      ['empty file', () => writeFileSync(main, '')],
      ['file deleted', () => rmSync(main)],
    ];
    for (const [name, act] of attempts) {
      writeFileSync(main, original);
      // wait until the good policy is live again (a previous attempt may have been a valid deny-all)
      for (let i = 0; i < 50; i++) {
        const ok = await send(sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(keys.alice) });
        if (ok.status === 200) break;
        await sleep(100);
      }
      await sleep(300);
      act();
      await sleep(1000); // reloads were observed to apply within ~170 ms
      const after = await behaves();
      // is what we wrote a failing policy by Keygate's own judgement?
      const failing = (await cli(['policy', 'check', dir])).code !== 0;
      expect(sidecar.proc.exitCode, `${name}: sidecar died`).toBeNull();
      expect(after.sites.status, `${name}: scoped → sites`).toBe(403);
      expect(after.foreign.status, `${name}: scoped → foreign`).toBe(403);
      expect(after.conn.status, `${name}: connect → devices`).toBe(403);
      expect(after.list.text, name).not.toMatch(/BOB/);
      if (!failing) {
        // Keygate considers this a valid policy (e.g. an empty file = no roles): only fail-closed is required
        console.log(`[observation] '${name}' passes policy check and was applied: scoped list → ${after.list.status}, server → ${after.server.status}`);
        continue;
      }
      // last good policy still fully applies (not a deny-all either)
      expect(after.list.status, `${name}: scoped list`).toBe(200);
      expect(after.server.status, `${name}: server`).toBe(200);
      expect(after.received, name).toContain('/v1/devices?referenceId=alice');
    }
    writeFileSync(main, original);
  }, 40_000);
});
