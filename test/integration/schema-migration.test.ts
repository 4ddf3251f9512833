// A store written by the previous Keygate (schema version 1, no version recorded) keeps
// working after the upgrade: built with the v1 DDL kept as a fixture, its keys written as
// that Keygate wrote them, then opened by today's CLI and sidecar, on SQLite and PostgreSQL.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type DemoBackend, startDemoBackend } from '../../src/demo/backend.ts';
import { generateKey, hashKey, newKeyId } from '../../src/keys/key-format.ts';
import { POSTGRES_SCHEMA_VERSION } from '../../src/keys/migrations/postgres.ts';
import { SQLITE_SCHEMA_VERSION } from '../../src/keys/migrations/sqlite.ts';
import { key, send } from '../helpers/http.ts';
import { PG_BASE, pgSchemas } from '../helpers/pg-schemas.ts';
import { BIN, ROOT, type Sidecar, startSidecar, tempDir } from '../helpers/sidecar.ts';

const FIXTURES = join(ROOT, 'test/fixtures');
const pgs = pgSchemas('migrate');
let backend: DemoBackend | undefined;
let sidecar: Sidecar | undefined;
afterEach(async () => {
  await sidecar?.stop('SIGKILL');
  await backend?.close();
  sidecar = backend = undefined;
});
afterAll(() => pgs.drop());

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
}

interface OldKey {
  id: string;
  key: string;
  type: string;
  referenceId: string | null;
  revoked: boolean;
}

/** The keys the v1 CLI made: a server key, a scoped key for alice, and a revoked server key. */
function oldKeys(): OldKey[] {
  return [
    { id: newKeyId(), key: generateKey('api_'), type: 'server', referenceId: null, revoked: false },
    { id: newKeyId(), key: generateKey('scoped_'), type: 'scoped', referenceId: 'alice', revoked: false },
    { id: newKeyId(), key: generateKey('api_'), type: 'server', referenceId: null, revoked: true },
  ];
}

async function checkOldKeysWork(store: string, keys: OldKey[]): Promise<void> {
  backend = await startDemoBackend();
  sidecar = await startSidecar({ upstream: backend.url, store });
  const [server, alice, revoked] = keys as [OldKey, OldKey, OldKey];
  const all = await send(sidecar.url, 'GET', '/v1/devices', { headers: key(server.key) });
  expect(all.status).toBe(200);
  expect(new Set(all.json.data.map((d: { referenceId: string }) => d.referenceId))).toEqual(new Set(['alice', 'bob']));
  const own = await send(sidecar.url, 'GET', '/v1/devices', { headers: key(alice.key) });
  expect(own.status).toBe(200);
  expect(new Set(own.json.data.map((d: { referenceId: string }) => d.referenceId))).toEqual(new Set(['alice']));
  expect((await send(sidecar.url, 'GET', '/v1/devices', { headers: key(revoked.key) })).status).toBe(401);
  // The upgraded store reads and lists them as v2 keys; the audit trail starts with their creation.
  const listed = cli(['keys', 'list', '--json', '--store', store]);
  expect(listed.status, listed.stderr).toBe(0);
  const rows = listed.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(rows.map((r) => r.id)).toEqual(keys.map((k) => k.id));
  expect(rows.map((r) => r.keyPrefix)).toEqual(['api_', 'scoped_', 'api_']);
  expect(rows[2]!.revokedAt).not.toBeNull();
  expect(rows[0]).toMatchObject({ createdBy: 'cli', allowedOrigins: [], allowedRedirects: [], allowReferenceId: false, lastUsedAt: null });
  // A key made now beside them works as well.
  const made = cli(['keys', 'create', '--type', 'server', '--json', '--store', store]);
  expect(made.status, made.stderr).toBe(0);
  expect((await send(sidecar.url, 'GET', '/v1/sites', { headers: key((JSON.parse(made.stdout) as { key: string }).key) })).status).toBe(200);
}

describe('a SQLite file of schema version 1', () => {
  function v1File(keys: OldKey[]): string {
    const path = join(tempDir('kg-v1-'), 'keygate.db');
    const db = new DatabaseSync(path);
    db.exec('PRAGMA journal_mode = WAL');
    db.exec(readFileSync(join(FIXTURES, 'schema-v1-sqlite.sql'), 'utf8'));
    const insert = db.prepare('INSERT INTO keys (id, key_hash, type, reference_id, name, roles, conditions, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    keys.forEach(
      (k, i) => void insert.run(k.id, hashKey(k.key), k.type, k.referenceId, `old ${i}`, '[]', '{}', `2025-01-0${i + 1}T00:00:00.000Z`, null, k.revoked ? '2025-02-01T00:00:00.000Z' : null),
    );
    db.close();
    return path;
  }

  const version = (path: string): number => {
    const db = new DatabaseSync(path);
    try {
      return (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
    } finally {
      db.close();
    }
  };

  it('is refused by commands that only read keys, which say how to upgrade, and left as it was', () => {
    const path = v1File(oldKeys());
    const r = cli(['keys', 'list', '--store', `sqlite:${path}`]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`has schema version 1; this Keygate needs ${SQLITE_SCHEMA_VERSION}: run keygate serve or keygate keys create to upgrade it`);
    expect(version(path)).toBe(0);
  });

  it('is upgraded by serve: the old keys work, revoked ones stay revoked, and the trail begins', async () => {
    const keys = oldKeys();
    const path = v1File(keys);
    await checkOldKeysWork(`sqlite:${path}`, keys);
    expect(version(path)).toBe(SQLITE_SCHEMA_VERSION);
    const db = new DatabaseSync(path);
    const events = db.prepare('SELECT key_id, event, actor FROM key_events ORDER BY seq').all();
    db.close();
    expect(events.slice(0, 4).map((e) => [e.key_id, e.event, e.actor])).toEqual([...keys.map((k) => [k.id, 'created', 'cli']), [keys[2]!.id, 'revoked', 'cli']]);
  });

  it('is upgraded by keys create as well', () => {
    const path = v1File(oldKeys());
    const r = cli(['keys', 'create', '--type', 'connect', '--allow-origin', 'https://app.example.com', '--json', '--store', `sqlite:${path}`]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ type: 'connect', allowedOrigins: ['https://app.example.com'] });
    expect(version(path)).toBe(SQLITE_SCHEMA_VERSION);
  });

  it('is upgraded exactly once when several processes open it at once', async () => {
    const keys = oldKeys();
    const path = v1File(keys);
    const { spawn } = await import('node:child_process');
    const runs = await Promise.all(
      Array.from(
        { length: 4 },
        () =>
          new Promise<{ code: number | null; err: string }>((resolve) => {
            const p = spawn(process.execPath, [BIN, 'keys', 'create', '--type', 'server', '--json', '--store', `sqlite:${path}`], { cwd: ROOT });
            let err = '';
            p.stderr.on('data', (c: Buffer) => (err += c.toString()));
            p.on('exit', (code) => resolve({ code, err }));
          }),
      ),
    );
    for (const r of runs) expect(r.code, r.err).toBe(0);
    expect(version(path)).toBe(SQLITE_SCHEMA_VERSION);
    const db = new DatabaseSync(path);
    const created = db.prepare("SELECT count(*) AS n FROM key_events WHERE event = 'created'").get() as { n: number };
    const count = db.prepare('SELECT count(*) AS n FROM keys').get() as { n: number };
    db.close();
    expect(count.n).toBe(3 + 4);
    expect(created.n).toBe(3 + 4); // the old keys' events were written once, not once per process
  });

  it('of a newer version than this Keygate reads is refused by serve, unchanged', () => {
    const path = join(tempDir('kg-v9-'), 'keygate.db');
    const db = new DatabaseSync(path);
    db.exec(readFileSync(join(FIXTURES, 'schema-v1-sqlite.sql'), 'utf8'));
    db.exec('PRAGMA user_version = 9');
    db.close();
    const r = spawnSync(process.execPath, [BIN, 'serve', '--upstream', 'http://127.0.0.1:1', '--listen', '127.0.0.1:0', '--ops-listen', '127.0.0.1:0', '--store', `sqlite:${path}`], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`has schema version 9, newer than this Keygate reads (${SQLITE_SCHEMA_VERSION})`);
    expect(version(path)).toBe(9);
  });
});

describe('a PostgreSQL schema of version 1', () => {
  async function v1Schema(keys: OldKey[]): Promise<string> {
    const schema = pgs.schema(`v${Math.random().toString(36).slice(2, 8)}`);
    const client = new pg.Client({ connectionString: PG_BASE });
    await client.connect();
    try {
      await client.query(readFileSync(join(FIXTURES, 'schema-v1-postgres.sql'), 'utf8').replaceAll(':schema', `"${schema}"`));
      for (const [i, k] of keys.entries()) {
        await client.query(
          `INSERT INTO "${schema}".keygate_keys (id, key_hash, type, reference_id, name, roles, conditions, created_at, expires_at, revoked_at)
          VALUES ($1, $2, $3, $4, $5, '[]'::jsonb, '{}'::jsonb, $6, NULL, $7)`,
          [k.id, hashKey(k.key), k.type, k.referenceId, `old ${i}`, `2025-01-0${i + 1}T00:00:00.000Z`, k.revoked ? '2025-02-01T00:00:00.000Z' : null],
        );
      }
    } finally {
      await client.end();
    }
    return schema;
  }

  async function version(schema: string): Promise<number | null> {
    const client = new pg.Client({ connectionString: PG_BASE });
    await client.connect();
    try {
      const found = await client.query('SELECT to_regclass($1) IS NOT NULL AS t', [`"${schema}".keygate_schema_version`]);
      if (!found.rows[0].t) return null;
      return (await client.query(`SELECT version FROM "${schema}".keygate_schema_version`)).rows[0].version;
    } finally {
      await client.end();
    }
  }

  it('is refused by commands that only read keys, and left as it was', async () => {
    const schema = await v1Schema(oldKeys());
    const r = cli(['keys', 'list', '--store', `${PG_BASE}?schema=${schema}`]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`has schema version 1; this Keygate needs ${POSTGRES_SCHEMA_VERSION}: run keygate serve or keygate keys create to upgrade it`);
    expect(await version(schema)).toBeNull();
  });

  it('is upgraded by serve: the old keys work, revoked ones stay revoked', async () => {
    const keys = oldKeys();
    const schema = await v1Schema(keys);
    await checkOldKeysWork(`${PG_BASE}?schema=${schema}`, keys);
    expect(await version(schema)).toBe(POSTGRES_SCHEMA_VERSION);
  });
});
