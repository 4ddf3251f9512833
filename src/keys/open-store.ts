import { resolve } from 'node:path';
import type { KeyStore } from './store.ts';
import { SqliteKeyStore } from './sqlite-store.ts';

export const DEFAULT_STORE = 'sqlite:./data/keygate.db';

/** `sqlite:PATH` (relative to the working directory) or `postgres://…` / `postgresql://…`. */
export async function openStore(url: string): Promise<KeyStore> {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path === '') throw new Error(`store URL "${url}" has no path (expected sqlite:PATH)`);
    return new SqliteKeyStore(path === ':memory:' ? path : resolve(path));
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const { PostgresKeyStore } = await import('./postgres-store.ts');
    return PostgresKeyStore.connect(url);
  }
  throw new Error(`store URL "${url}" is not supported (expected sqlite:PATH or postgres://…)`);
}
