import type { BufferedResponse } from '../forward.ts';
import type { ListScan } from './clean-scan.ts';
import { ENVELOPE_HEAD, envelopeTail } from './list-render.ts';
import type { CheckedResponse } from './response-checks.ts';

/**
 * An answer held as the pieces it arrived in. Joining a large answer's pieces is a fresh
 * allocation and a copy of every byte (about 0.18 µs per item of a 1,000-item device page,
 * most of it the page faults of fresh memory), and a proven list that Keygate releases
 * as it came, or with its own envelope tail, needs neither: the pieces, or slices of them
 * and the tail, are written one after another. `body` joins them only when something
 * reads it (the full check, the policy test runner, a lookup).
 */
export class PartsResponse implements CheckedResponse {
  readonly status: number;
  readonly headers: BufferedResponse['headers'];
  readonly parts: readonly Buffer[];
  readonly length: number;
  readonly dropped?: number;
  #joined: Buffer | null = null;

  constructor(status: number, headers: BufferedResponse['headers'], parts: readonly Buffer[], length: number, dropped?: number) {
    this.status = status;
    this.headers = headers;
    this.parts = parts;
    this.length = length;
    if (dropped !== undefined) this.dropped = dropped;
  }

  get body(): Buffer {
    return (this.#joined ??= Buffer.concat(this.parts as Buffer[], this.length));
  }
}

/** The answer's length, without joining its pieces. */
export function bodySize(res: BufferedResponse): number {
  if (res instanceof PartsResponse) return res.length;
  const parts = res.parts;
  if (parts === undefined) return res.body.length;
  let length = 0;
  for (const p of parts) length += p.length;
  return length;
}

/** A proven list answer in more pieces than this is joined (many small writes cost more than one copy). */
export const MAX_PARTS = 64;

/** The byte at `at` of the pieces' join, or -1 beyond it. */
function byteAt(parts: readonly Buffer[], at: number): number {
  for (const p of parts) {
    if (at < p.length) return p[at]!;
    at -= p.length;
  }
  return -1;
}

function hasAt(parts: readonly Buffer[], at: number, text: string): boolean {
  for (let k = 0; k < text.length; k++) if (byteAt(parts, at + k) !== text.charCodeAt(k)) return false;
  return true;
}

/** Slices of the pieces covering [start, end) of their join, without copying. */
function slices(parts: readonly Buffer[], start: number, end: number, out: Buffer[]): void {
  let base = 0;
  for (const p of parts) {
    const from = Math.max(start - base, 0);
    const to = Math.min(end - base, p.length);
    if (from < to) out.push(from === 0 && to === p.length ? p : p.subarray(from, to));
    base += p.length;
    if (base >= end) return;
  }
}

/**
 * The pieces to write for a proven list (list-render.ts's renderScannedList, over pieces):
 * the answer's own pieces when it is already in Keygate's form; else the envelope head,
 * the items' bytes as slices and the tail, when the items are one byte (their comma)
 * apart; else null (the caller joins and renders).
 */
export function renderScannedParts(parts: readonly Buffer[], length: number, scan: ListScan): Buffer[] | null {
  const head = scan.bare ? '[' : ENVELOPE_HEAD;
  const tail = scan.bare ? ']' : envelopeTail(scan.count, scan.page, scan.perPage);
  const r = scan.ranges;
  for (let k = 1; k < scan.count; k++) if (r[2 * k]! !== r[2 * k - 1]! + 1) return null;
  const itemBytes = scan.count === 0 ? 0 : r[2 * scan.count - 1]! - r[0]!;
  const size = head.length + itemBytes + tail.length;
  if ((scan.count === 0 || r[0] === head.length) && size === length && hasAt(parts, 0, head) && hasAt(parts, size - tail.length, tail)) return parts.slice();
  const out: Buffer[] = [Buffer.from(head, 'latin1')];
  if (scan.count > 0) slices(parts, r[0]!, r[2 * scan.count - 1]!, out);
  out.push(Buffer.from(tail, 'latin1'));
  return out;
}
