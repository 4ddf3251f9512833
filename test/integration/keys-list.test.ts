// `keygate keys list` on small and very large SQLite stores, through the real CLI process.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { bulkKeyId, bulkSqliteStore } from '../helpers/bulk-keys.ts';
import { BIN, ROOT, tempDir } from '../helpers/sidecar.ts';
import { streamed } from '../helpers/streamed-cli.ts';

function cli(...args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8' });
}

const idOf = (jsonLine: string): string => (JSON.parse(jsonLine) as { id: string }).id;

describe('keys list: paging and filters', () => {
  let store: string;
  beforeAll(async () => {
    const path = join(tempDir(), 'keys.db');
    await bulkSqliteStore(path, 25); // key 1 … key 25, ten per second of created_at
    store = `sqlite:${path}`;
  });

  it('pages with --limit and --after, in creation order, and says on stderr how to go on', () => {
    const seen: string[] = [];
    let after: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const r = cli('keys', 'list', '--store', store, '--json', '--limit', '10', ...(after === undefined ? [] : ['--after', after]));
      expect(r.status, r.stderr).toBe(0);
      const ids = r.stdout
        .trim()
        .split('\n')
        .filter((l) => l !== '')
        .map(idOf);
      seen.push(...ids);
      const next = /add --after (\S+) for the next page/.exec(r.stderr)?.[1];
      if (next === undefined) break;
      expect(next).toBe(ids[ids.length - 1]);
      after = next;
    }
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => bulkKeyId(i + 1)));
  });

  it('a page that ends exactly at the last key says nothing more follows', () => {
    const r = cli('keys', 'list', '--store', store, '--json', '--limit', '5', '--after', bulkKeyId(20));
    expect(r.stdout.trim().split('\n').map(idOf)).toEqual([21, 22, 23, 24, 25].map(bulkKeyId));
    expect(r.stderr).toBe('');
  });

  it('filters by --type and --reference-id', () => {
    const servers = cli('keys', 'list', '--store', store, '--json', '--type', 'server');
    expect(servers.stdout.trim().split('\n').map(idOf)).toEqual([4, 8, 12, 16, 20, 24].map(bulkKeyId));
    const user7 = cli('keys', 'list', '--store', store, '--json', '--reference-id', 'user7');
    expect(user7.stdout.trim().split('\n').map(idOf)).toEqual([bulkKeyId(7)]);
    const table = cli('keys', 'list', '--store', store, '--type', 'scoped', '--limit', '2');
    expect(table.stdout.split('\n')[0]).toMatch(/^ID +TYPE +STATUS +CREATED +REFERENCE ID +NAME$/);
    expect(table.stdout).toContain(`${bulkKeyId(2)}  scoped        active   2023-11-14T22:13:20.000Z  user2         bulk 2`);
    expect(table.stderr).toContain(`add --after ${bulkKeyId(3)}`);
  });

  it('--after an id the store does not have fails (exit 1) instead of printing an empty page', () => {
    const r = cli('keys', 'list', '--store', store, '--after', 'key_nope');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('no key with id key_nope');
    expect(r.stdout).toBe('');
  });
});

describe('keys list: a store of 1,000,000 keys', () => {
  const N = 1_000_000;
  let store: string;
  beforeAll(async () => {
    const path = join(tempDir(), 'keys.db');
    await bulkSqliteStore(path, N);
    store = `sqlite:${path}`;
  }, 120_000);

  // Before paging, --json built all million records and one string of them (1.7 GB RSS), and
  // the table crashed with "Maximum call stack size exceeded". A 64 MB heap holds neither (32 MB sufficed on a quiet machine; under a loaded CI run the collector lagged behind the table's page strings).
  it('streams every key as JSON Lines within a 64 MB heap', async () => {
    const r = await streamed(['keys', 'list', '--store', store, '--json', '--limit', 'all'], 64);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.lines).toBe(N);
    expect(idOf(r.first)).toBe(bulkKeyId(1));
    expect(idOf(r.last)).toBe(bulkKeyId(N));
  }, 120_000);

  it('prints the whole table within a 64 MB heap', async () => {
    const r = await streamed(['keys', 'list', '--store', store, '--limit', 'all'], 64);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.lines).toBe(N + 1);
    expect(r.last.startsWith(bulkKeyId(N))).toBe(true);
  }, 120_000);

  it('shows the first page by default, and any page at once', () => {
    const first = cli('keys', 'list', '--store', store);
    expect(first.status).toBe(0);
    expect(first.stdout.trim().split('\n')).toHaveLength(101);
    expect(first.stderr).toContain(`100 keys shown and more follow; add --after ${bulkKeyId(100)}`);
    const deep = cli('keys', 'list', '--store', store, '--json', '--type', 'server', '--after', bulkKeyId(999_000), '--limit', '3');
    expect(deep.stdout.trim().split('\n').map(idOf)).toEqual([999_004, 999_008, 999_012].map(bulkKeyId));
  });
});
