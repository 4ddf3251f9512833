import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { generateKey } from '../../src/keys/key-format.ts';
import { type Fixture, startFixture } from '../helpers/fixture.ts';
import { key, send } from '../helpers/http.ts';
import { parseMetrics, sampleValue } from '../helpers/metrics.ts';
import { refusingUpstream } from '../helpers/refusing-upstream.ts';
import { addKey, BIN, ROOT, startSidecar, tempStore } from '../helpers/sidecar.ts';

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let f: Fixture;
beforeAll(async () => {
  f = await startFixture();
});
afterAll(async () => f.close());
beforeEach(() => {
  f.take();
});

describe('401: missing, malformed, unknown, expired or revoked keys', () => {
  const expectRefused = async (headers: Record<string, string>, code: string): Promise<void> => {
    const r = await send(f.sidecar.url, 'GET', '/v1/devices', { headers });
    expect(r.status).toBe(401);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.json).toEqual({ error: { status: 401, code, message: expect.any(String) }, requestId: expect.any(String) });
    expect(r.headers['x-request-id']).toBe(r.json.requestId);
    expect(f.take()).toHaveLength(0);
  };

  it('missing', () => expectRefused({}, 'KEY_MISSING'));
  it('empty', () => expectRefused({ 'texture-api-key': '' }, 'KEY_MISSING'));
  it('malformed: wrong prefix, length, alphabet', async () => {
    for (const k of ['nope', 'Bearer x', 'connect_' + 'a'.repeat(38), f.keys.alice.toUpperCase(), f.keys.alice + 'x', f.keys.alice.replace('scoped_', 'api_')]) {
      await expectRefused({ 'texture-api-key': k }, 'KEY_MALFORMED');
    }
  });
  it('malformed: a checksum that does not match (one character changed)', async () => {
    const k = f.keys.alice;
    const flipped = k.slice(0, 10) + (k[10] === 'a' ? 'b' : 'a') + k.slice(11);
    await expectRefused({ 'texture-api-key': flipped }, 'KEY_MALFORMED');
  });
  it('unknown but well-formed', () => expectRefused({ 'texture-api-key': generateKey('scoped_') }, 'KEY_INVALID'));
  it('a repeated header is refused', async () => {
    const r = await send(f.sidecar.url, 'GET', '/v1/devices', { headers: { 'texture-api-key': [f.keys.alice, f.keys.server] } });
    expect(r.status).toBe(401);
  });
  it('expired', async () => {
    const { key: k } = await addKey(f.store, { type: 'server', expiresInMs: 300 });
    expect((await send(f.sidecar.url, 'GET', '/v1/sites', { headers: key(k) })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 400));
    f.take();
    await expectRefused({ 'texture-api-key': k }, 'KEY_INVALID');
  });
});

describe('keys CLI', () => {
  it('create prints the secret once as JSON with id, key, type, referenceId; list never shows it', () => {
    const store = tempStore();
    const created = cli('keys', 'create', '--type', 'scoped', '--reference-id', 'carol', '--name', 'carol app', '--store', store, '--json');
    expect(created.status).toBe(0);
    const k = JSON.parse(created.stdout);
    expect(k).toMatchObject({ type: 'scoped', referenceId: 'carol', name: 'carol app' });
    expect(k.key).toMatch(/^scoped_[0-9A-Za-z]{38}$/);
    expect(k.id).toMatch(/^key_/);
    const listed = cli('keys', 'list', '--store', store, '--json');
    expect(
      listed.stdout
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { id: string }).id),
    ).toEqual([k.id]);
    expect(listed.stdout).not.toContain(k.key);
    const table = cli('keys', 'list', '--store', store);
    expect(table.stdout).toContain(k.id);
    expect(table.stdout).toContain('active');
  });

  it('server and connect keys are api_ keys; scoped keys need a referenceId', () => {
    const store = tempStore();
    expect(JSON.parse(cli('keys', 'create', '--type', 'server', '--store', store, '--json').stdout).key).toMatch(/^api_/);
    expect(JSON.parse(cli('keys', 'create', '--type', 'connect', '--store', store, '--json').stdout).key).toMatch(/^api_/);
    const bad = cli('keys', 'create', '--type', 'scoped', '--store', store);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--reference-id');
    expect(cli('keys', 'create', '--type', 'root', '--store', store).status).toBe(2);
  });

  it('revoke of an unknown id exits 1', () => {
    const store = tempStore();
    expect(cli('keys', 'create', '--type', 'server', '--store', store).status).toBe(0);
    const r = cli('keys', 'revoke', 'key_nope', '--store', store);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('key_nope');
  });

  it('a key revoked with the CLI (another process) is refused by the running sidecar within 5 s', async () => {
    const created = JSON.parse(cli('keys', 'create', '--type', 'scoped', '--reference-id', 'alice', '--store', f.store, '--json').stdout);
    expect((await send(f.sidecar.url, 'GET', '/v1/devices', { headers: key(created.key) })).status).toBe(200);
    expect(cli('keys', 'revoke', created.id, '--store', f.store).status).toBe(0);
    const t0 = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - t0 < 6000) {
      status = (await send(f.sidecar.url, 'GET', '/v1/devices', { headers: key(created.key) })).status;
      if (status === 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(401);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(cli('keys', 'list', '--store', f.store).stdout).toMatch(new RegExp(`${created.id}.*revoked`));
  });
});

describe('errors, logs and metrics', () => {
  it('every response carries x-request-id; the backend gets the same id', async () => {
    const r = await send(f.sidecar.url, 'GET', '/v1/devices', { headers: key(f.keys.server) });
    expect(r.headers['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-z]+$/);
    expect(f.take()[0]!.headers['x-request-id']).toBe(r.headers['x-request-id']);
  });

  it('one access line per request with id, key id, type, route, decision, status, latency', async () => {
    const r = await send(f.sidecar.url, 'GET', '/v1/devices/dev_bob_1', { headers: key(f.keys.alice) });
    await new Promise((res) => setTimeout(res, 100));
    const lines = f.sidecar.logs.filter((l) => l.msg === 'access' && l.requestId === r.json.requestId);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      keyId: f.keys.ids.alice,
      keyType: 'scoped',
      route: 'GET /v1/devices/{id}',
      decision: 'forbidden',
      status: 403,
      code: 'RESOURCE_NOT_ALLOWED',
      latencyMs: expect.any(Number),
    });
  });

  it('/metrics exports requests by decision/key type/route, latency, key cache, store and upstream errors', async () => {
    await send(f.sidecar.url, 'GET', '/v1/devices', { headers: key(f.keys.alice) });
    const m = (await send(f.sidecar.opsUrl, 'GET', '/metrics')).text;
    expect(m).toMatch(/keygate_requests_total\{decision="allow",key_type="scoped",route="GET \/v1\/devices",status="200"\} \d+/);
    for (const name of [
      'keygate_request_duration_seconds_bucket',
      'keygate_key_cache_total',
      'keygate_store_query_duration_seconds',
      'keygate_policy_reloads_total',
      'keygate_log_lines_dropped_total',
      'keygate_cache_entries',
    ]) {
      expect(m).toContain(name);
    }
    expect(m).toMatch(/keygate_key_cache_total\{result="hit"\} [1-9]/);
  });

  it('keygate_attribute_lookups_total counts each lookup sent to the backend, not the cache hits', async () => {
    const lookups = async (): Promise<number> => sampleValue(parseMetrics((await send(f.sidecar.opsUrl, 'GET', '/metrics')).text), 'keygate_attribute_lookups_total', { resource: 'devices' }) ?? 0;
    const before = await lookups();
    const ids = [`dev_probe_${Date.now()}_a`, `dev_probe_${Date.now()}_b`];
    // Two ids nobody asked for yet (each looked up once, found unknown: 403), each asked three times.
    for (let i = 0; i < 3; i++) for (const id of ids) expect((await send(f.sidecar.url, 'GET', `/v1/devices/${id}`, { headers: key(f.keys.alice) })).status).toBe(403);
    expect(await lookups()).toBe(before + 2);
    expect(
      f
        .take()
        .filter((r) => r.headers['x-keygate-purpose'] === 'attribute-lookup')
        .map((r) => r.path),
    ).toEqual(ids.map((id) => `/v1/devices/${id}`));
  });

  it('/healthz and /readyz answer; unknown ops paths are 404 JSON', async () => {
    expect((await send(f.sidecar.opsUrl, 'GET', '/healthz')).json).toEqual({ status: 'ok' });
    const ready = await send(f.sidecar.opsUrl, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json).toMatchObject({ status: 'ready', store: { kind: 'sqlite', ok: true }, policy: { version: expect.any(String) } });
    const nf = await send(f.sidecar.opsUrl, 'GET', '/nope');
    expect(nf.status).toBe(404);
    expect(nf.json.error.code).toBe('NOT_FOUND');
  });
});

describe('forwarding', () => {
  it('streams large request and response bodies for server keys', async () => {
    const body = JSON.stringify({ name: 'big', blob: 'y'.repeat(3 * 1024 * 1024) });
    const r = await send(f.sidecar.url, 'POST', '/v1/sites', { headers: { ...key(f.keys.server), 'content-type': 'application/json' }, body });
    expect(r.status).toBe(201);
    expect(f.take()[0]!.body.length).toBe(body.length);
  });

  it('HEAD on a checked route answers headers only', async () => {
    const r = await send(f.sidecar.url, 'HEAD', '/v1/devices', { headers: key(f.keys.alice) });
    expect(r.status).toBe(200);
    expect(r.text).toBe('');
  });
});

describe('backend failures: 502 and 504, JSON, never a hang', () => {
  it('502 UPSTREAM_UNREACHABLE when nothing listens', async () => {
    const down = await refusingUpstream();
    const store = tempStore();
    const { key: k } = await addKey(store, { type: 'server' });
    const s = await startSidecar({ upstream: down.url, store });
    try {
      const r = await send(s.url, 'GET', '/v1/devices', { headers: key(k) });
      expect(r.status).toBe(502);
      expect(r.json.error.code).toBe('UPSTREAM_UNREACHABLE');
      const scoped = await addKey(store, { type: 'scoped', referenceId: 'alice' });
      expect((await send(s.url, 'GET', '/v1/devices/dev_alice_1', { headers: key(scoped.key) })).status).toBe(502);
      const m = (await send(s.opsUrl, 'GET', '/metrics')).text;
      expect(m).toMatch(/keygate_upstream_errors_total\{code="UPSTREAM_UNREACHABLE"\} [1-9]/);
    } finally {
      await s.stop('SIGKILL');
      await down.close();
    }
  });

  it('504 UPSTREAM_TIMEOUT when the backend is too slow', async () => {
    const hang = createServer(() => {
      /* never answers */
    });
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    const store = tempStore();
    const { key: k } = await addKey(store, { type: 'server' });
    const s = await startSidecar({ upstream: `http://127.0.0.1:${(hang.address() as AddressInfo).port}`, store, args: ['--upstream-timeout', '500'] });
    try {
      const t0 = Date.now();
      const r = await send(s.url, 'GET', '/v1/devices', { headers: key(k) });
      expect(r.status).toBe(504);
      expect(r.json.error.code).toBe('UPSTREAM_TIMEOUT');
      expect(Date.now() - t0).toBeLessThan(3000);
    } finally {
      await s.stop('SIGKILL');
      hang.closeAllConnections();
      hang.close();
    }
  });
});

describe('process', () => {
  it('SIGTERM: stops accepting, finishes the in-flight request, exits 0', async () => {
    const slow = createServer((_req, res) => setTimeout(() => res.end('{"data":[]}'), 800));
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const store = tempStore();
    const { key: k } = await addKey(store, { type: 'server' });
    const s = await startSidecar({ upstream: `http://127.0.0.1:${(slow.address() as AddressInfo).port}`, store });
    const inflight = send(s.url, 'GET', '/v1/sites', { headers: key(k) });
    await new Promise((r) => setTimeout(r, 200));
    const exit = s.stop('SIGTERM');
    const r = await inflight;
    expect(r.status).toBe(200);
    expect(await exit).toBe(0);
    await expect(send(s.url, 'GET', '/v1/sites', { headers: key(k) })).rejects.toThrow();
    slow.close();
  });

  it('a bad policy stops start-up with file:line:col', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'kg-pol-'));
    writeFileSync(join(dir, 'bad.yaml'), 'resources:\n  devices:\n    actions:\n      list: [GIT /v1/devices]\n');
    await expect(startSidecar({ upstream: 'http://127.0.0.1:9', store: tempStore(), policies: dir })).rejects.toThrow(/bad\.yaml:4:\d+ .*unknown method GIT/);
  });

  it('serve without --upstream is a usage error naming the option', () => {
    const r = spawnSync(process.execPath, [BIN, 'serve'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, KEYGATE_UPSTREAM: '' } });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--upstream');
  });
});
