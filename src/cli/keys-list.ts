import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { KeyRecord, KeyType } from '../keys/key-record.ts';
import type { KeyStore } from '../keys/store.ts';
import { printable } from './key-text.ts';

/** Keys asked of the store at a time: what `keys list` holds in memory, however many it prints. */
const LIST_PAGE = 1000;

export interface ListRequest {
  readonly type: KeyType | undefined;
  readonly referenceId: string | undefined;
  /** How many to print; Infinity for all. */
  readonly limit: number;
  readonly after: string | undefined;
  readonly json: boolean;
}

function status(k: KeyRecord, now: number): string {
  if (k.revokedAt !== null) return 'revoked';
  if (k.expiresAt !== null && Date.parse(k.expiresAt) <= now) return 'expired';
  return 'active';
}

/**
 * Columns of fixed width but the referenceId's, which takes the widest of the first page
 * (later pages keep it, so the columns stay put while the listing streams); the name comes
 * last, unpadded. When a key was revoked is in the --json output.
 */
class KeyTable {
  #referenceWidth = 0;

  page(keys: readonly KeyRecord[]): string {
    if (this.#referenceWidth === 0) {
      let widest = 'REFERENCE ID'.length;
      for (const k of keys) widest = Math.max(widest, (k.referenceId ?? '-').length);
      this.#referenceWidth = widest;
      return this.#line(['ID', 'TYPE', 'STATUS', 'CREATED', 'REFERENCE ID', 'NAME']) + this.page(keys);
    }
    const now = Date.now();
    let out = '';
    for (const k of keys) out += this.#line([k.id, k.type, status(k, now), k.createdAt, k.referenceId ?? '-', printable(k.name ?? '-')]);
    return out;
  }

  #line([id, type, state, created, reference, name]: string[]): string {
    return `${id!.padEnd(20)}  ${type!.padEnd(12)}  ${state!.padEnd(7)}  ${created!.padEnd(24)}  ${reference!.padEnd(this.#referenceWidth)}  ${name}`.trimEnd() + '\n';
  }
}

async function write(out: Writable, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain');
}

/**
 * Prints keys page by page (keyset paging on the store, LIST_PAGE at a time), so memory
 * stays bounded however large the store: a table, or one JSON object per line (JSON
 * Lines) with --json. When --limit stops it before the end, says on stderr how to go on.
 */
export async function listKeys(store: KeyStore, request: ListRequest, out: Writable, err: Writable = process.stderr): Promise<void> {
  const filter = { type: request.type, referenceId: request.referenceId };
  const table = request.json ? undefined : new KeyTable();
  let remaining = request.limit;
  let after = request.after;
  let shown = 0;
  while (remaining > 0) {
    const want = Math.min(LIST_PAGE, remaining);
    const page = await store.list({ ...filter, afterId: after, limit: want });
    if (page.length > 0 || (shown === 0 && table !== undefined)) {
      await write(out, table === undefined ? page.map((k) => JSON.stringify(k) + '\n').join('') : table.page(page));
    }
    shown += page.length;
    remaining -= page.length;
    if (page.length > 0) after = page[page.length - 1]!.id;
    if (page.length < want) return;
  }
  // Stopped by --limit: one more key says whether there is a next page.
  if ((await store.list({ ...filter, afterId: after, limit: 1 })).length > 0) {
    err.write(`keygate: ${shown} keys shown and more follow; add --after ${after} for the next page\n`);
  }
}
