import { parseStoreLocation } from '../keys/store-url.ts';
import type { LinkStore } from './link-store.ts';
import { SqliteLinkStore } from './sqlite-links.ts';

export type ClosableLinkStore = LinkStore & { close(): Promise<void> };

/**
 * The links table of the key store at `url` (made by the store's schema steps, so open the
 * key store first). The PostgreSQL client is loaded only for a PostgreSQL store: an
 * embedded deployment does not carry its 1.4 MB of heap.
 */
export async function openLinkStore(url: string): Promise<ClosableLinkStore> {
  const location = parseStoreLocation(url);
  if (location.kind === 'sqlite') return new SqliteLinkStore(location.path);
  const { PostgresLinkStore } = await import('./postgres-links.ts');
  return new PostgresLinkStore(location.options);
}
