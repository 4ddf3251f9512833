// keys show, update, rotate, revoke and events: the CLI on the same store and through the
// same key service as the management API, each change in the audit trail.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DemoBackend, startDemoBackend } from '../../src/demo/backend.ts';
import { key, send } from '../helpers/http.ts';
import { BIN, ROOT, type Sidecar, startSidecar, tempStore } from '../helpers/sidecar.ts';

function cli(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
}

function ok(args: string[]): string {
  const r = cli(args);
  expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

describe('keys show, update, rotate, events', () => {
  const store = tempStore();
  let backend: DemoBackend;
  let sidecar: Sidecar;
  let token: { id: string; key: string };

  beforeAll(async () => {
    token = JSON.parse(ok(['keys', 'create', '--type', 'access-token', '--name', 'reader', '--role', 'device-owner', '--condition', 'referenceId:alice', '--json', '--store', store]));
    backend = await startDemoBackend();
    sidecar = await startSidecar({ upstream: backend.url, store, env: { KEYGATE_KEY_CACHE_TTL: '5000' } });
  });
  afterAll(async () => {
    await sidecar?.stop('SIGKILL');
    await backend?.close();
  });

  it('show prints the key, never its secret; --json prints the record', () => {
    const text = ok(['keys', 'show', token.id, '--store', store]);
    expect(text).toMatch(new RegExp(`^id {11}${token.id}\\ntype {9}access-token\\nstate {8}active\\nprefix {7}${token.key.slice(0, 8)}…\\n`));
    expect(text).toContain('conditions   referenceId ∈ {alice}');
    expect(text).not.toContain(token.key.slice(8));
    const json = JSON.parse(ok(['keys', 'show', token.id, '--json', '--store', store]));
    expect(json).toMatchObject({ id: token.id, roles: ['device-owner'], conditions: { referenceId: ['alice'] }, createdBy: 'cli' });
    expect(JSON.stringify(json)).not.toContain(token.key.slice(8));
  });

  it('update changes what is given, replaces lists, clears them, and says what changed', () => {
    const out = ok(['keys', 'update', token.id, '--name', 'alice reader', '--condition', 'referenceId:alice', '--condition', 'referenceId:bob', '--expires-in', '30d', '--store', store]);
    expect(out.split('\n')[0]).toBe(`Changed name, conditions, expiresAt on ${token.id}.`);
    const after = JSON.parse(ok(['keys', 'show', token.id, '--json', '--store', store]));
    expect(after).toMatchObject({ name: 'alice reader', conditions: { referenceId: ['alice', 'bob'] }, roles: ['device-owner'] });
    expect(Date.parse(after.expiresAt) - Date.now()).toBeGreaterThan(29 * 86_400_000);
    expect(ok(['keys', 'update', token.id, '--name', 'alice reader', '--store', store]).split('\n')[0]).toBe(`Nothing changed on ${token.id}.`);
    const cleared = JSON.parse(ok(['keys', 'update', token.id, '--no-expiry', '--clear-conditions', '--json', '--store', store]));
    expect(cleared).toMatchObject({ expiresAt: null, conditions: {} });
    ok(['keys', 'update', token.id, '--condition', 'referenceId:alice', '--store', store]);
  });

  it.each([
    [['--role', 'x', '--clear-roles'], 2, 'give --role or --clear-roles, not both'],
    [['--expires-in', '1d', '--no-expiry'], 2, 'give --expires-in or --no-expiry, not both'],
    [[], 2, 'nothing to change'],
    [['--allow-origin', 'https://app.example.com'], 2, '--allow-origin: allowed origins are for connect and scoped keys'],
    [['--allow-origin', 'http://app.example.com'], 2, '--allow-origin: '],
    [['--allow-reference-id', 'yes'], 2, '--allow-reference-id'],
  ])('update %j is refused (exit %i) saying %s', (args, status, message) => {
    const r = cli(['keys', 'update', token.id, '--store', store, ...args]);
    expect(r.status, r.stderr).toBe(status);
    expect(r.stderr).toContain(message);
  });

  it('update of a store that does not exist: exit 1, and nothing is made', () => {
    const r = cli(['keys', 'update', token.id, '--name', 'x', '--store', 'sqlite:/nonexistent/k.db']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('does not exist');
  });

  it('rotate prints the new secret once; the previous works for the grace, then not; without grace it stops within a second', async () => {
    const srv = JSON.parse(ok(['keys', 'create', '--type', 'server', '--json', '--store', store])) as { id: string; key: string };
    const before = await send(sidecar.url, 'GET', '/v1/devices', { headers: key(srv.key) });
    expect(before.status).toBe(200);
    const rotated = JSON.parse(ok(['keys', 'rotate', srv.id, '--grace', '1h', '--json', '--store', store]));
    expect(rotated).toMatchObject({ id: srv.id, keyPrefix: rotated.key.slice(0, 8) });
    expect(Date.parse(rotated.previousKeyExpiresAt) - Date.now()).toBeGreaterThan(3_500_000);
    for (const k of [srv.key, rotated.key]) expect((await send(sidecar.url, 'GET', '/v1/devices', { headers: key(k) })).status).toBe(200);
    const text = ok(['keys', 'rotate', srv.id, '--store', store]);
    expect(text).toMatch(/^Rotated key_\w+: its new secret is\n\n {2}api_\w+\n\nThe previous secret no longer works\./);
    const newest = /\n {2}(api_\w+)\n/.exec(text)![1]!;
    const started = performance.now();
    let status = 200;
    while (status === 200 && performance.now() - started < 3_000) status = (await send(sidecar.url, 'GET', '/v1/devices', { headers: key(rotated.key) })).status;
    expect(status).toBe(401);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect((await send(sidecar.url, 'GET', '/v1/devices', { headers: key(newest) })).status).toBe(200);
    expect(cli(['keys', 'rotate', srv.id, '--grace', '8d', '--store', store]).stderr).toContain('--grace');
    ok(['keys', 'rotate', token.id, '--grace', '10m', '--store', store]);
  });

  it('events lists every change with its actor, oldest first; --json as JSON Lines', () => {
    ok(['keys', 'revoke', token.id, '--store', store]);
    const lines = ok(['keys', 'events', token.id, '--json', '--store', store])
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((e) => [e.event, e.actor])).toEqual([
      ['created', 'cli'],
      ['updated', 'cli'],
      ['updated', 'cli'],
      ['updated', 'cli'],
      ['rotated', 'cli'],
      ['revoked', 'cli'],
    ]);
    expect(lines[1].changes.name).toEqual({ from: 'reader', to: 'alice reader' });
    const text = ok(['keys', 'events', token.id, '--store', store]);
    expect(text).toMatch(/ created +cli/);
    expect(text).toContain('name "reader" -> "alice reader"');
    expect(text).toMatch(/rotated +cli +prefix api_\w{4} -> api_\w{4}; previous secret works until /);
    const revoked = cli(['keys', 'update', token.id, '--name', 'x', '--store', store]);
    expect(revoked.status).toBe(1);
    expect(revoked.stderr).toContain('is revoked: it can no longer be changed or rotated');
  });

  it('an unknown id: exit 1, saying so', () => {
    for (const sub of ['show', 'rotate', 'events', 'revoke']) {
      const r = cli(['keys', sub, 'key_doesNotExist0000', '--store', store]);
      expect(r.status, sub).toBe(1);
      expect(r.stderr, sub).toContain('no key with id key_doesNotExist0000');
    }
  });
});
