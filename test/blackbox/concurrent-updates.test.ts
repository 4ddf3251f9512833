// Invariant 12 (no escalation) under concurrency, on SQLite and PostgreSQL: two updates of
// one key sent at once, each within the acting key's power alone, cannot together leave a
// key with more power than the acting key's. Each was judged on the key as it was read;
// the store then applied only the changed fields to the row as it was at write time, so
// `roles: [all-devices]` and `conditions: {}` added up to a key to every user's devices.
// Now the key as it will be written is judged again inside the write. The race is made
// certain, not hoped for: another connection holds the store's write lock while both
// requests are judged, as a backup or a CLI transaction would.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import { PG_BASE, pgSchemas } from '../helpers/pg-schemas.ts';
import { apiOf, cliKey } from './api-keys-suite.ts';
import { type Backend, errorBody, keyHeader, ROOT, type Sidecar, send, startBackend, startSidecar, tempStore } from './harness.ts';

const schemas = pgSchemas('bbrace');
afterAll(() => schemas.drop());

/** The shipped policy, plus roles for a token that administers keys and reaches one user's devices. */
function policyDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kg-race-'));
  const shipped = readFileSync(join(ROOT, 'policies/texture.yaml'), 'utf8');
  const roles = `  keys-admin:
    permissions: ['api-keys:*']
  all-devices:
    permissions: ['devices:*', 'commands:*']
  f1-devices:
    permissions: ['devices:*', 'commands:*']
    conditions:
      referenceId: ['f1user']
  all-sites:
    permissions: ['sites:*']
`;
  const at = shipped.indexOf('\nroles:\n') + '\nroles:\n'.length;
  writeFileSync(join(dir, 'texture.yaml'), shipped.slice(0, at) + roles + shipped.slice(at));
  return dir;
}

/**
 * Holds the store's write lock from another connection until the returned function is
 * called; that function first runs `sql` (with `{keys}` for the keys table) in the same
 * transaction, as another writer committing just before the waiting write gets the lock.
 */
async function holdWriteLock(store: string): Promise<(sql?: string) => Promise<void>> {
  if (store.startsWith('sqlite:')) {
    const holder: ChildProcess = spawn(
      process.execPath,
      [
        '-e',
        `const { DatabaseSync } = require('node:sqlite');
         const db = new DatabaseSync(${JSON.stringify(store.slice('sqlite:'.length))}, { timeout: 5000 });
         db.exec('BEGIN IMMEDIATE');
         db.exec("UPDATE keys SET name = name WHERE id = 'none'");
         console.log('locked');
         process.stdin.once('data', (d) => { const sql = d.toString().trim(); if (sql !== '-') db.exec(sql); db.exec('COMMIT'); process.exit(0); });`,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
    return async (sql?: string) => {
      holder.stdin!.write(`${sql === undefined ? '-' : sql.replaceAll('{keys}', 'keys')}\n`);
      await new Promise((resolve) => holder.once('exit', resolve));
    };
  }
  const schema = new URL(store).searchParams.get('schema')!;
  const client = new pg.Client({ connectionString: PG_BASE });
  await client.connect();
  await client.query('BEGIN');
  await client.query(`LOCK TABLE "${schema}".keygate_keys IN EXCLUSIVE MODE`);
  return async (sql?: string) => {
    if (sql !== undefined) await client.query(sql.replaceAll('{keys}', `"${schema}".keygate_keys`));
    await client.query('COMMIT');
    await client.end();
  };
}

const stores: Array<[string, () => string]> = [
  ['SQLite', () => tempStore()],
  ['PostgreSQL', () => schemas.url('s')],
];

describe.each(stores)('two updates of one key at once on %s', (_name, newStore) => {
  let backend: Backend | undefined;
  let sidecar: Sidecar | undefined;
  let sidecarStore: string | undefined;
  afterAll(async () => {
    await sidecar?.stop();
    await backend?.close();
  });

  test('each allowed alone, together refused: one lands, the other is judged on the key it would write (403 ESCALATION_REFUSED)', async () => {
    backend = await startBackend();
    const store = newStore();
    sidecarStore = store;
    const admin = await cliKey(store, ['--type', 'access-token', '--role', 'keys-admin', '--role', 'f1-devices', '--role', 'all-sites']);
    const server = await cliKey(store, ['--type', 'server']);
    sidecar = await startSidecar({ upstream: backend.url, store, policies: policyDir() });
    const api = apiOf(() => sidecar!);
    const made = await api('POST', '/v1/api-keys', admin.key, { type: 'access-token', roles: ['all-sites'], conditions: { referenceId: ['f1user'] } });
    expect(made.status, made.text).toBe(201);
    const target = made.json as { id: string; key: string };
    // The pair in one request is refused: it is more than the admin's power.
    const both = await api('PATCH', `/v1/api-keys/${target.id}`, admin.key, { roles: ['all-devices'], conditions: {} });
    expect(both.status, both.text).toBe(403);

    const release = await holdWriteLock(store);
    const answers = Promise.all([api('PATCH', `/v1/api-keys/${target.id}`, admin.key, { roles: ['all-devices'] }), api('PATCH', `/v1/api-keys/${target.id}`, admin.key, { conditions: {} })]);
    // Both are read and judged meanwhile; their writes wait for the lock.
    await new Promise((resolve) => setTimeout(resolve, 700));
    await release();
    const [roles, conditions] = await answers;
    const statuses = [roles.status, conditions.status].sort();
    expect(statuses, `${roles.text} ${conditions.text}`).toEqual([200, 403]);
    expect(errorBody(roles.status === 403 ? roles : conditions).error.code).toBe('ESCALATION_REFUSED');

    // What the store holds is one of the two, never both; the key reaches no other user.
    const now = (await api('GET', `/v1/api-keys/${target.id}`, server.key)).json as { roles: string[]; conditions: Record<string, unknown> };
    expect(now.roles.includes('all-devices') && Object.keys(now.conditions).length === 0, JSON.stringify(now)).toBe(false);
    backend.reset();
    const bob = await send(sidecar.proxyPort, { path: '/v1/devices?referenceId=bob', headers: keyHeader(target.key) });
    // Refused (sites only) or filtered to f1user (its devices): never bob's.
    expect([200, 403]).toContain(bob.status);
    expect(bob.text).not.toContain('bob');
    expect(backend.received.filter((r) => r.url.includes('bob'))).toEqual([]);
  }, 60_000);

  test('a key revoked while its create waited for the lock makes nothing (409 ACTING_KEY_CHANGED)', async () => {
    const store = sidecarStore!;
    const api = apiOf(() => sidecar!);
    const actor = await cliKey(store, ['--type', 'access-token', '--role', 'keys-admin', '--role', 'f1-devices']);
    const release = await holdWriteLock(store);
    const made = api('POST', '/v1/api-keys', actor.key, { type: 'access-token', roles: ['f1-devices'] });
    await new Promise((resolve) => setTimeout(resolve, 700));
    const at = new Date().toISOString();
    await release(`UPDATE {keys} SET revoked_at = '${at}', updated_at = '${at}' WHERE id = '${actor.id}'`);
    const r = await made;
    expect(r.status, r.text).toBe(409);
    expect(errorBody(r).error.code).toBe('ACTING_KEY_CHANGED');
    const server = await cliKey(store, ['--type', 'server']);
    const listed = (await api('GET', '/v1/api-keys?type=access-token&perPage=100', server.key)).json as { data: Array<{ createdBy: string }> };
    expect(listed.data.filter((k) => k.createdBy === actor.id)).toEqual([]);
  }, 60_000);

  test('a key widened while a rotation of it waited is not rotated for a key it is now more than (403)', async () => {
    const store = sidecarStore!;
    const api = apiOf(() => sidecar!);
    const admin = await cliKey(store, ['--type', 'access-token', '--role', 'keys-admin', '--role', 'f1-devices']);
    const made = await api('POST', '/v1/api-keys', admin.key, { type: 'access-token', roles: ['f1-devices'] });
    expect(made.status, made.text).toBe(201);
    const target = made.json as { id: string };
    const release = await holdWriteLock(store);
    const rotation = api('POST', `/v1/api-keys/${target.id}/rotate`, admin.key, {});
    await new Promise((resolve) => setTimeout(resolve, 700));
    const at = new Date().toISOString();
    // Another key widens it meanwhile (committed just before the rotation gets the lock).
    await release(`UPDATE {keys} SET roles = '["all-devices"]', updated_at = '${at}' WHERE id = '${target.id}'`);
    const r = await rotation;
    expect(r.status, r.text).toBe(403);
    expect(errorBody(r).error.code).toBe('ESCALATION_REFUSED');
  }, 60_000);
});
