import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { SqliteKeyStore } from './sqlite-store.ts';
import type { KeyStore } from './store.ts';
import { StoreNotFoundError } from './store.ts';
import { parseStoreLocation } from './store-url.ts';

export interface OpenStoreOptions {
  /**
   * Whether a missing store may be made: true for `serve` and `keys create`, false for the
   * commands that only read or change keys, so a mistyped path or schema fails instead of
   * answering from a new, empty store. Even when creating, a SQLite file is made only in a
   * directory that exists: a typo in a directory name is refused, not silently made. The
   * same commands upgrade an older schema (migrations/); the others refuse it, saying so.
   */
  readonly create: boolean;
}

/** `sqlite:PATH` (relative to the working directory) or `postgres://…` / `postgresql://…` (see store-url.ts). */
export async function openStore(url: string, options: OpenStoreOptions): Promise<KeyStore> {
  const location = parseStoreLocation(url);
  if (location.kind === 'postgres') {
    const { PostgresKeyStore } = await import('./postgres-store.ts');
    return PostgresKeyStore.connect(url, { create: options.create });
  }
  if (location.path === ':memory:') return new SqliteKeyStore(location.path);
  const path = resolve(location.path);
  if (!existsSync(path)) {
    if (!options.create) {
      throw new StoreNotFoundError(`key store ${url} does not exist (no file ${path}); keygate serve or keygate keys create makes it`);
    }
    const dir = dirname(path);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      throw new StoreNotFoundError(`key store ${url}: directory ${dir} does not exist (create it first; Keygate makes the file, not its directory)`);
    }
  }
  return new SqliteKeyStore(path, { create: options.create });
}
