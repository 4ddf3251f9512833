import { hash } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import { hashKey } from '../src/keys/key-format.ts';
import { mintKey } from '../src/keys/mint-key.ts';
import { SqliteKeyStore } from '../src/keys/sqlite-store.ts';

export interface BenchKeys {
  /** Full access: scenario 1. */
  readonly server: string;
  /** Scoped to referenceId alice: scenarios 2, 3, 4 and 6. */
  readonly alice: string;
  /** Alice's too, with a rate limit of its own (keys.<id>) that never triggers: scenario 8. */
  readonly aliceLimited: { readonly key: string; readonly id: string };
}

/** Writes keys into the SQLite file Keygate will open; returns their plaintexts. */
export async function seedKeys(path: string, wanted: ReadonlyArray<{ label: string; type: string; referenceId?: string }>): Promise<Map<string, string>> {
  return new Map([...(await seedKeyRecords(path, wanted))].map(([label, k]) => [label, k.key]));
}

/** seedKeys, with each key's id beside its plaintext. */
async function seedKeyRecords(path: string, wanted: ReadonlyArray<{ label: string; type: string; referenceId?: string }>): Promise<Map<string, { key: string; id: string }>> {
  const store = new SqliteKeyStore(path);
  const out = new Map<string, { key: string; id: string }>();
  try {
    for (const w of wanted) {
      const { record, key } = mintKey({ type: w.type, referenceId: w.referenceId, name: `bench-${w.label}` });
      await store.insert(record, hashKey(key));
      out.set(w.label, { key, id: record.id });
    }
  } finally {
    await store.close();
  }
  return out;
}

export async function seedBenchKeys(path: string): Promise<BenchKeys> {
  const keys = await seedKeyRecords(path, [
    { label: 'server', type: 'server' },
    { label: 'alice', type: 'scoped', referenceId: 'alice' },
    { label: 'aliceLimited', type: 'scoped', referenceId: 'alice' },
  ]);
  return { server: keys.get('server')!.key, alice: keys.get('alice')!.key, aliceLimited: keys.get('aliceLimited')! };
}

/**
 * Grows the key table of a SQLite store to `total` rows with keys nobody holds (random
 * hashes, scoped to a hundred thousand users), in one transaction: a million one at a time
 * through the store would take minutes. The rows are shaped like minted ones; only the
 * keys seeded with seedKeys have plaintexts.
 */
export function fillKeys(path: string, total: number): void {
  const db = new DatabaseSync(path);
  try {
    const have = Number((db.prepare('SELECT COUNT(*) AS n FROM keys').get() as { n: number }).n);
    const insert = db.prepare('INSERT INTO keys (id, key_hash, type, reference_id, name, created_at) VALUES (?, ?, ?, ?, ?, ?)');
    const createdAt = new Date().toISOString();
    db.exec('BEGIN');
    for (let i = have; i < total; i++) {
      insert.run(`key_fill${i.toString(36).padStart(12, '0')}`, hash('sha256', `bench filler ${i}`, 'hex'), 'scoped', `user_${i % 100_000}`, null, createdAt);
    }
    db.exec('COMMIT');
  } finally {
    db.close();
  }
}
