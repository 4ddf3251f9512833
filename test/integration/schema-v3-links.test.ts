// A store of schema version 3 with Connect links open at the upgrade: version 4 gives every
// link its own secret, so a link nobody had opened yet still finishes through the hosted
// page, and a browser bound by a cookie of the old kind (a value Keygate cannot tell it
// issued) is no longer that link's browser. Built with the released steps 1-3 (a step is
// never edited once released), on SQLite and PostgreSQL, then opened by today's sidecar.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type DemoBackend, startDemoBackend } from '../../src/demo/backend.ts';
import { POSTGRES_STEPS } from '../../src/keys/migrations/postgres-steps.ts';
import { SQLITE_STEPS } from '../../src/keys/migrations/sqlite-steps.ts';
import { csrfOf, FormBrowser } from '../blackbox/connect-client.ts';
import { PG_BASE, pgSchemas } from '../helpers/pg-schemas.ts';
import { BIN, ROOT, type Sidecar, startSidecar, tempDir } from '../helpers/sidecar.ts';

const pgs = pgSchemas('links4');
let backend: DemoBackend | undefined;
let sidecar: Sidecar | undefined;
afterEach(async () => {
  await sidecar?.stop('SIGKILL');
  await backend?.close();
  sidecar = backend = undefined;
});
afterAll(() => pgs.drop());

const sha256 = (t: string): string => createHash('sha256').update(t).digest('hex');
const token = (): string => randomBytes(32).toString('base64url');

interface OldLink {
  id: string;
  token: string;
  /** The cookie value of the browser a v3 Keygate bound the link to, or null. */
  cookie: string | null;
}

/** Two links as the v3 Keygate wrote them: one nobody has opened, one bound to a browser's cookie. */
function oldLinks(): [OldLink, OldLink] {
  return [
    { id: `link_${randomBytes(16).toString('hex')}`, token: token(), cookie: null },
    { id: `link_${randomBytes(16).toString('hex')}`, token: token(), cookie: token() },
  ];
}

const COLUMNS = 'id, token_hash, created_by, reference_id, redirect_url, created_at, expires_at, session_hash';
const row = (l: OldLink): string[] => [
  l.id,
  sha256(l.token),
  'key_old',
  'alice',
  'https://app.example.com/connected',
  new Date().toISOString(),
  new Date(Date.now() + 600_000).toISOString(),
  ...(l.cookie === null ? [] : [sha256(l.cookie)]),
];

/**
 * The links' maker, `key_old`, is no key of the store, and a link mints only while the key
 * that made it is active: once the store is upgraded, a real key made with the CLI takes
 * its place (setMaker writes its id into the links).
 */
async function checkLinks(store: string, [fresh, bound]: [OldLink, OldLink], setMaker: (id: string) => Promise<void>): Promise<void> {
  backend = await startDemoBackend();
  sidecar = await startSidecar({ upstream: backend.url, store });
  const port = Number(new URL(sidecar.url).port);
  const maker = JSON.parse(execFileSync(process.execPath, [BIN, 'keys', 'create', '--type', 'server', '--json', '--store', store], { cwd: ROOT, encoding: 'utf8' })) as { id: string };
  await setMaker(maker.id);
  const browser = new FormBrowser();
  const page = await browser.get(port, `/connect/links/${fresh.token}`);
  expect(page.status).toBe(200);
  expect(page.text).toContain('Alice&#39;s');
  const done = await browser.post(port, `/connect/links/${fresh.token}`, { csrf: csrfOf(page.text), action: 'allow' });
  expect(done.status).toBe(303);
  expect(new URL(done.headers.location!).searchParams.get('texture_scoped_key')).toMatch(/^scoped_/);
  const old = new FormBrowser();
  old.cookies.set(`keygate_link_${bound.id}`, bound.cookie!);
  expect((await old.get(port, `/connect/links/${bound.token}`)).status).toBe(403);
}

describe('a SQLite file of schema version 3 with open links', () => {
  it('is upgraded to 6: each link gets a secret of its own (4), no maker secret (5), its user counted as chosen (6); an unopened link finishes, an old-style cookie no longer counts', async () => {
    const path = join(tempDir('kg-v3-'), 'keygate.db');
    const db = new DatabaseSync(path);
    db.exec('PRAGMA journal_mode = WAL');
    for (const step of SQLITE_STEPS.filter((s) => s.version <= 3)) step.up(db);
    db.exec('PRAGMA user_version = 3');
    const links = oldLinks();
    db.prepare(`INSERT INTO connect_links (${COLUMNS.replace(', session_hash', '')}) VALUES (?, ?, ?, ?, ?, ?, ?)`).run(...row(links[0]));
    db.prepare(`INSERT INTO connect_links (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`).run(...row(links[1]));
    db.close();
    await checkLinks(`sqlite:${path}`, links, async (id) => {
      const open = new DatabaseSync(path);
      open.prepare('UPDATE connect_links SET created_by = ?').run(id);
      open.close();
    });
    const after = new DatabaseSync(path);
    const keys = after
      .prepare('SELECT session_key FROM connect_links ORDER BY id')
      .all()
      .map((r) => r.session_key as string);
    // Their user, alice, is not of the generated form: chosen, so judged again at the finish.
    const chosen = after.prepare('SELECT DISTINCT reference_chosen FROM connect_links').all();
    const version = (after.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
    after.close();
    expect(version).toBe(6);
    expect(chosen).toEqual([{ reference_chosen: 1 }]);
    expect(keys).toHaveLength(2);
    for (const k of keys) expect(k).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(keys[0]).not.toBe(keys[1]);
  });
});

describe('a PostgreSQL schema of version 3 with open links', () => {
  it('is upgraded to 6 the same way', async () => {
    const schema = pgs.schema('v3');
    const q = (name: string): string => `"${schema}".${name}`;
    const client = new pg.Client({ connectionString: PG_BASE });
    await client.connect();
    const links = oldLinks();
    try {
      await client.query(`CREATE SCHEMA "${schema}"`);
      for (const step of POSTGRES_STEPS.filter((s) => s.version <= 3)) await step.up(client, q);
      await client.query(`CREATE TABLE ${q('keygate_schema_version')} (version INTEGER NOT NULL); INSERT INTO ${q('keygate_schema_version')} VALUES (3)`);
      await client.query(`INSERT INTO ${q('keygate_connect_links')} (${COLUMNS.replace(', session_hash', '')}) VALUES ($1, $2, $3, $4, $5, $6, $7)`, row(links[0]));
      await client.query(`INSERT INTO ${q('keygate_connect_links')} (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, row(links[1]));
    } finally {
      await client.end();
    }
    await checkLinks(`${PG_BASE}?schema=${schema}`, links, async (id) => {
      const open = new pg.Client({ connectionString: PG_BASE });
      await open.connect();
      await open.query(`UPDATE ${q('keygate_connect_links')} SET created_by = $1`, [id]);
      await open.end();
    });
    const after = new pg.Client({ connectionString: PG_BASE });
    await after.connect();
    try {
      expect((await after.query(`SELECT version FROM ${q('keygate_schema_version')}`)).rows).toEqual([{ version: 6 }]);
      const keys = (await after.query(`SELECT session_key FROM ${q('keygate_connect_links')} ORDER BY id`)).rows.map((r) => r.session_key as string);
      expect(keys).toHaveLength(2);
      for (const k of keys) expect(k).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(keys[0]).not.toBe(keys[1]);
      // A link written without one is refused by the column, not given an empty secret.
      await expect(after.query(`INSERT INTO ${q('keygate_connect_links')} (${COLUMNS.replace(', session_hash', '')}) VALUES ($1, $2, $3, $4, $5, $6, $7)`, row(oldLinks()[0]))).rejects.toThrow(
        /session_key/,
      );
    } finally {
      await after.end();
    }
  });
});
