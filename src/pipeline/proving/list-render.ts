import type { ListScan } from './clean-scan.ts';

/**
 * Writes a checked list answer. Nothing in it may depend on items the key may not see
 * (invariant 10), so it is the same whether the backend dropped another user's items
 * (it honoured the filter) or sent them and Keygate dropped them:
 *
 * - the kept items, each as the backend's own bytes, joined by `,` (no whitespace
 *   between them, so a dropped item leaves no trace);
 * - a bare array stays a bare array; an envelope becomes
 *   `{"data":[…],"page":P,"perPage":Q,"totalItems":T,"totalPages":N}` with `page` and
 *   `perPage` as the backend gave them (whole numbers from 1 to MAX_PAGING; left out
 *   otherwise) and no other field of the backend's;
 * - the totals derived from the kept items of this page alone (the backend's count other
 *   users' items when it ignores the filter, even on a page where nothing was dropped):
 *   a page with fewer items than `perPage` is the last one, so T = (P−1)·Q + n and N = P;
 *   a full page says at least one more item may follow (T = (P−1)·Q + n + 1, N = P + 1),
 *   so a client that pages on `totalPages` asks for the next one; an empty page beyond
 *   the first says the previous one was the last (T = (P−1)·Q, N = P − 1); without a
 *   `perPage`, T = n and N = 1. For a key with fewer items than a page — the usual scoped
 *   key — these are the backend's own totals.
 */
export const MAX_PAGING = 10_000_000;

/** `page` or `perPage` as the backend gave it, or 0 when absent or not a whole number from 1 to MAX_PAGING. */
function pagingValue(v: unknown): number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_PAGING ? v : 0;
}

// The last tail written: a warm key asks for the same page of the same list again and again.
let lastN = -1;
let lastPage = -1;
let lastPerPage = -1;
let lastTail = '';

/** The envelope after the items: `],"page":…,"totalPages":…}`. */
export function envelopeTail(n: number, page: number, perPage: number): string {
  if (n === lastN && page === lastPage && perPage === lastPerPage) return lastTail;
  lastN = n;
  lastPage = page;
  lastPerPage = perPage;
  lastTail = writeTail(n, page, perPage);
  return lastTail;
}

function writeTail(n: number, page: number, perPage: number): string {
  let tail = ']';
  if (page > 0) tail += ',"page":' + page;
  if (perPage > 0) tail += ',"perPage":' + perPage;
  const p = page > 0 ? page : 1;
  let total: number;
  let pages: number;
  if (perPage === 0) {
    total = n;
    pages = 1;
  } else if (n === 0) {
    total = (p - 1) * perPage;
    pages = p === 1 ? 1 : p - 1;
  } else if (n < perPage) {
    total = (p - 1) * perPage + n;
    pages = p;
  } else {
    total = (p - 1) * perPage + n + 1;
    pages = p + 1;
  }
  return tail + ',"totalItems":' + total + ',"totalPages":' + pages + '}';
}

export const ENVELOPE_HEAD = '{"data":[';

/** The list from the full check: kept items as text slices of the answer (valid UTF-8, so their bytes are the backend's). */
export function renderTextList(items: readonly string[], bare: boolean, page: unknown, perPage: unknown): Buffer {
  const joined = items.join(',');
  return Buffer.from(bare ? '[' + joined + ']' : ENVELOPE_HEAD + joined + envelopeTail(items.length, pagingValue(page), pagingValue(perPage)));
}

/** True when bytes [at, at + text.length) of `b` are `text` (ASCII). */
function hasAt(b: Buffer, at: number, text: string): boolean {
  if (at < 0 || at + text.length > b.length) return false;
  for (let k = 0; k < text.length; k++) if (b[at + k] !== text.charCodeAt(k)) return false;
  return true;
}

/**
 * The list from the scanner (every item kept): the same bytes renderTextList would write.
 * A backend that already writes exactly this form (the usual case) has its buffer
 * returned as it is, without a copy.
 */
export function renderScannedList(body: Buffer, scan: ListScan): Buffer {
  const head = scan.bare ? '[' : ENVELOPE_HEAD;
  const tail = scan.bare ? ']' : envelopeTail(scan.count, scan.page, scan.perPage);
  const r = scan.ranges;
  let itemBytes = scan.count === 0 ? 0 : scan.count - 1;
  // One byte between two items of valid JSON is their comma.
  let joined = true;
  for (let k = 0; k < scan.count; k++) {
    itemBytes += r[2 * k + 1]! - r[2 * k]!;
    if (k > 0 && r[2 * k]! !== r[2 * k - 1]! + 1) joined = false;
  }
  const contiguous = joined && (scan.count === 0 || r[0] === head.length);
  const size = head.length + itemBytes + tail.length;
  if (contiguous && size === body.length && hasAt(body, 0, head) && hasAt(body, size - tail.length, tail)) return body;
  const out = Buffer.allocUnsafe(size);
  let at = out.write(head, 0, 'latin1');
  if (joined && scan.count > 0) {
    // Items one byte apart are joined by their commas already: one copy, not one per item
    // (a copy is a native call, about as dear as scanning a short item).
    at += body.copy(out, at, r[0]!, r[2 * scan.count - 1]!);
  } else {
    for (let k = 0; k < scan.count; k++) {
      if (k > 0) out[at++] = 0x2c;
      at += body.copy(out, at, r[2 * k]!, r[2 * k + 1]!);
    }
  }
  out.write(tail, at, 'latin1');
  return out;
}
