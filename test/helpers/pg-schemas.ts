import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The test database (trust auth); every test file works in schemas of its own and drops them. */
export const PG_BASE = process.env.KEYGATE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Fresh schema names for one test file, and a way to drop them all at the end. */
export function pgSchemas(prefix: string): { url(label: string): string; schema(label: string): string; drop(): Promise<void> } {
  const run = `kg_${prefix}_${process.pid}_${randomBytes(3).toString('hex')}`;
  const made = new Set<string>();
  const schema = (label: string): string => {
    const name = `${run}_${label}`;
    made.add(name);
    return name;
  };
  return {
    schema,
    url: (label) => `${PG_BASE}?schema=${schema(label)}`,
    async drop() {
      const admin = new pg.Client({ connectionString: PG_BASE });
      await admin.connect();
      try {
        for (const name of made) await admin.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
      } finally {
        await admin.end();
      }
    },
  };
}
