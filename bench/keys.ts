import { mintKey } from '../src/keys/mint-key.ts';
import { hashKey } from '../src/keys/key-format.ts';
import { SqliteKeyStore } from '../src/keys/sqlite-store.ts';

export interface BenchKeys {
  /** Full access: scenario 1. */
  readonly server: string;
  /** Scoped to referenceId alice: scenarios 2, 3, 4 and 6. */
  readonly alice: string;
}

/** Writes keys into the SQLite file Keygate will open; returns their plaintexts. */
export async function seedKeys(path: string, wanted: ReadonlyArray<{ label: string; type: string; referenceId?: string }>): Promise<Map<string, string>> {
  const store = new SqliteKeyStore(path);
  const out = new Map<string, string>();
  try {
    for (const w of wanted) {
      const { record, key } = mintKey({ type: w.type, referenceId: w.referenceId, name: `bench-${w.label}` });
      await store.insert(record, hashKey(key));
      out.set(w.label, key);
    }
  } finally {
    await store.close();
  }
  return out;
}

export async function seedBenchKeys(path: string): Promise<BenchKeys> {
  const keys = await seedKeys(path, [
    { label: 'server', type: 'server' },
    { label: 'alice', type: 'scoped', referenceId: 'alice' },
  ]);
  return { server: keys.get('server')!, alice: keys.get('alice')! };
}
