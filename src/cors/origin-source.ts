import type { KeyRecord } from '../keys/key-record.ts';
import type { KeyStore } from '../keys/store.ts';

const PAGE = 500;

/**
 * Every origin an active connect key allows, read page by page (connect keys are few:
 * one per app or environment, not one per user). Scoped keys are not read: theirs are
 * copies of their connect key's.
 */
export async function connectKeyOrigins(store: KeyStore): Promise<Set<string>> {
  const out = new Set<string>();
  const now = Date.now();
  let afterId: string | undefined;
  for (;;) {
    const page: KeyRecord[] = await store.list({ type: 'connect', afterId, limit: PAGE });
    for (const record of page) {
      if (record.revokedAt !== null || (record.expiresAt !== null && Date.parse(record.expiresAt) <= now)) continue;
      for (const origin of record.allowedOrigins) out.add(origin);
    }
    if (page.length < PAGE) return out;
    afterId = page[page.length - 1]!.id;
  }
}
