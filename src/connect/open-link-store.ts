import { parseStoreLocation } from '../keys/store-url.ts';
import type { LinkStore } from './link-store.ts';
import { PostgresLinkStore } from './postgres-links.ts';
import { SqliteLinkStore } from './sqlite-links.ts';

export type ClosableLinkStore = LinkStore & { close(): Promise<void> };

/** The links table of the key store at `url` (made by the store's schema steps, so open the key store first). */
export function openLinkStore(url: string): ClosableLinkStore {
  const location = parseStoreLocation(url);
  return location.kind === 'sqlite' ? new SqliteLinkStore(location.path) : new PostgresLinkStore(location.options);
}
