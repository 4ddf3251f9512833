// `keygate keys list` and `keys revoke` on the PostgreSQL store, through the real CLI process.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresKeyStore } from '../../src/keys/postgres-store.ts';
import { bulkKeyId, bulkPostgresKeys } from '../helpers/bulk-keys.ts';
import { BIN, ROOT } from '../helpers/sidecar.ts';
import { streamed } from '../helpers/streamed-cli.ts';

const PG_BASE = process.env.KEYGATE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const RUN = `kg_list_${process.pid}_${randomBytes(4).toString('hex')}`;
const BIG = `${RUN}_big`;
const MISSING = `${RUN}_missing`;
const N = 1_000_000;

let admin: pg.Client;

beforeAll(async () => {
  admin = new pg.Client({ connectionString: PG_BASE });
  await admin.connect();
  const store = await PostgresKeyStore.connect(`${PG_BASE}?schema=${BIG}`);
  await store.ping();
  await store.close();
  await bulkPostgresKeys(PG_BASE, `"${BIG}".keygate_keys`, N);
}, 180_000);

afterAll(async () => {
  for (const schema of [BIG, MISSING]) await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
});

describe('keys list on PostgreSQL', () => {
  it('streams 1,000,000 keys as JSON Lines within a 64 MB heap', async () => {
    const r = await streamed(['keys', 'list', '--store', `${PG_BASE}?schema=${BIG}`, '--json', '--limit', 'all'], 64);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.lines).toBe(N);
    expect(JSON.parse(r.first).id).toBe(bulkKeyId(1));
    expect(JSON.parse(r.last).id).toBe(bulkKeyId(N));
  }, 180_000);

  it('on a schema with no key table fails (exit 1) and creates nothing', async () => {
    for (const args of [
      ['keys', 'list'],
      ['keys', 'revoke', 'key_x'],
    ]) {
      const r = spawnSync(process.execPath, [BIN, ...args, '--store', `${PG_BASE}?schema=${MISSING}`], { cwd: ROOT, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toContain(`the database has no table "${MISSING}".keygate_keys`);
    }
    const found = await admin.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [MISSING]);
    expect(found.rows).toHaveLength(0);
  });
});
