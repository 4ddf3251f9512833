import { isAscii, isUtf8 } from 'node:buffer';
import type { CompiledResource } from '../../policy/model.ts';
import { PairMemo } from '../../util/pair-memo.ts';
import type { Condition } from '../authorize.ts';
import { foldName } from './fold.ts';
import { MAX_PAGING } from './list-render.ts';
import { createWasmScanner } from './wasm/wasm-scan.ts';

/**
 * Proves, from the bytes alone, that a checked backend answer is *clean*: the response
 * checks would release it as they would after a full parse — a single answer as the
 * backend sent it, a list with every item kept (list-render.ts writes its envelope).
 * Clean means
 *
 * - the bytes are one JSON value (RFC 8259 grammar, valid UTF-8, nesting ≤ 64);
 * - `list`: an array of items, or an object whose `data` (once) is that array, whose
 *   `page` and `perPage` appear at most once, and whose other fields are all scalars;
 *   `single`: one item;
 * - every item is an object naming each checked field exactly once, at its top level,
 *   with an unescaped string value among the values the key may see;
 * - no other object, at any depth, has a key that is a checked field, and no key
 *   anywhere is spelt with an escape (`"referenc\u0065Id"` could be one), holds a byte
 *   outside printable ASCII, or folds into a checked field (`ReferenceId`,
 *   `reference_id`: see fold.ts) without being it.
 *
 * Those are the conditions under which every JSON parser, whichever duplicate it keeps
 * and however it compares keys, reads the same owners as Keygate. Anything else — a
 * foreign item, a number for an owner, a nested owner, an escaped or look-alike key, bad
 * UTF-8 — is "not proven", never "refused": the caller falls back to the full path
 * (strict parse with keys unescaped, filtering), which decides. The scanner can therefore
 * only skip work, never change a verdict; the differential test in
 * test/unit/clean-scan.test.ts holds it to that.
 *
 * How it is fast (docs/performance.md has the figures) and why each shortcut is sound:
 *
 * - **Encoding, once, natively.** `isAscii`, else `isUtf8`, over the whole body (SIMD in
 *   Node). Every byte of a multi-byte UTF-8 character is ≥ 0x80, so a valid body hides no
 *   `"` or `\` inside a character (an overlong `C0 A2` is refused), and the walk below,
 *   which accepts no byte ≥ 0x80 outside strings, can look for ASCII delimiters byte by
 *   byte. Keys must be printable ASCII: when the body is ASCII without DEL (checked with
 *   one native search) every key is; otherwise each key's bytes are looked at.
 * - **Backslashes found natively, not looked for.** One `indexOf` finds the first `\` of
 *   the body, and each later one is searched for only after the escape before it has
 *   been read. A `\` outside a string is no JSON token, so the walk refuses it where it
 *   stands; hence the next backslash is never behind the walk. A string whose first
 *   quote comes before that backslash holds no escape and ends there; only a string with
 *   a backslash before its quote reads its escapes one by one (each must be one RFC 8259
 *   allows, and a quote escaped by one does not end the string).
 * - **String bodies read four bytes at a time.** Inside a string only a quote (the end,
 *   or an escaped one: see above) and a control character (< 0x20, refused as the strict
 *   parser does) matter; a 32-bit word is tested for either with two carry-free byte
 *   tests (stopAt), and the first such byte of the word is exact.
 * - **Only the bytes between strings are read one by one**: that is where the grammar,
 *   the nesting depth (counted as the strict parser counts it) and which object a key
 *   belongs to are decided. A key is compared with the checked fields only when it is as
 *   long as the shortest folded one, which the field itself and any look-alike must be.
 *
 * What that buys is bounded by JavaScript: a byte read costs about ten instructions in
 * V8 and a native search about a hundred to set up, so an answer of short strings (the
 * usual device list: ~9 bytes a string) costs about 26 instructions a byte against 46
 * before (callgrind), where a native parser would need one or two.
 *
 * So provenClean runs the same walk as a WebAssembly program (wasm/: assembled
 * from its text at start-up, strings passed over sixteen bytes at a time with SIMD), over
 * a copy of the answer in the module's memory — about half the JavaScript walk's time a
 * byte (docs/performance.md) — and this walk is what runs where the runtime refuses the
 * module. The two are held to one another by test/unit/wasm-scan.test.ts.
 */
export type ScanShape = 'list' | 'single';

/** The checked fields as top-level item keys, in the order of the conditions, with what the walk compares them with. */
export interface ScanFields {
  readonly names: readonly string[];
  readonly folded: readonly string[];
  /** The names' bytes (printable ASCII). */
  readonly nameBytes: readonly Uint8Array[];
  /** The folded names' bytes: lower case, no `-` or `_`. */
  readonly foldedBytes: readonly Uint8Array[];
  /** The shortest folded name: a shorter key can be no field and fold into none. */
  readonly minKey: number;
  /** Per field, the values the key may see, as bytes; a value with a byte outside printable ASCII is never matched (the full check decides). */
  readonly allowed: readonly (readonly Uint8Array[])[];
}

/** The fields to scan for; null when one is nested or unusual, or two conditions name one field. */
export function scanFields(resource: CompiledResource, conditions: readonly Condition[]): ScanFields | null {
  if (conditions.length === 0 || conditions.length > 30) return null;
  const names: string[] = [];
  for (const c of conditions) {
    const field = scanField(resource, c.attribute);
    if (field === null || names.includes(field)) return null;
    names.push(field);
  }
  const folded = names.map(foldName);
  return Object.freeze({
    names,
    folded,
    nameBytes: names.map((n) => Buffer.from(n, 'latin1')),
    foldedBytes: folded.map((n) => Buffer.from(n, 'latin1')),
    minKey: Math.min(...folded.map((f) => f.length)),
    allowed: conditions.map((c) => c.values.filter((v) => PRINTABLE.test(v)).map((v) => Buffer.from(v, 'latin1'))),
  });
}

/**
 * Where a proven list's parts are, for writing the answer (list-render.ts): [start, end)
 * of each item, and the envelope's `page` and `perPage` (0 when absent or not a whole
 * number from 1 to MAX_PAGING). One object, reused: a scan and its rendering run in
 * one synchronous step.
 */
export interface ListScan {
  ranges: number[];
  count: number;
  bare: boolean;
  page: number;
  perPage: number;
}

export const listScan: ListScan = { ranges: [], count: 0, bare: false, page: 0, perPage: 0 };

/** Printable ASCII without `"` and `\`: compared byte for byte with unescaped JSON strings. */
const PLAIN_ASCII = /^[\x20\x21\x23-\x5b\x5d-\x7e]+$/;
/** A value that can be compared with the bytes of an unescaped string (an empty one too). */
const PRINTABLE = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** Per compiled resource (a reload compiles new ones), so a request does a map probe, not a regex test. */
const FIELDS = new PairMemo<CompiledResource, string, string | null>(() => new Map());

function scanField(resource: CompiledResource, attribute: string): string | null {
  return FIELDS.get(resource, attribute, plainField);
}

/** The attribute's field name when it is one top-level key of plain ASCII, else null. */
function plainField(resource: CompiledResource, attribute: string): string | null {
  const path = resource.fields.get(attribute) ?? [attribute];
  return path.length === 1 && PLAIN_ASCII.test(path[0]!) ? path[0]! : null;
}

const MAX_DEPTH = 64;
const FAIL = -1;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const COLON = 0x3a;
const COMMA = 0x2c;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const DEL = 0x7f;
/** Scanner.key(): the key is no checked field. */
const NO_FIELD = -1;
const PER_PAGE = Buffer.from('perPage', 'latin1');
const NO_BYTES = Buffer.alloc(0);
const NO_VIEW = new DataView(new ArrayBuffer(0));

function isHex(c: number | undefined): boolean {
  return c !== undefined && ((c >= ZERO && c <= NINE) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66));
}

/** Bytes of the escape at `i` (a backslash): 2, or 6 for `\uXXXX`; 0 when RFC 8259 allows no such escape. */
function escapeLength(b: Buffer, i: number): number {
  const d = b[i + 1];
  if (d === 0x75) return isHex(b[i + 2]) && isHex(b[i + 3]) && isHex(b[i + 4]) && isHex(b[i + 5]) ? 6 : 0;
  return d === QUOTE || d === BACKSLASH || d === 0x2f || d === 0x62 || d === 0x66 || d === 0x6e || d === 0x72 || d === 0x74 ? 2 : 0;
}

/**
 * The first quote or control character at or after `p`, or b.length. Four bytes at a
 * time: for a word x, `(v − 0x01010101) & ~v & 0x80808080` with v = x ^ 0x22222222 marks
 * bytes equal to `"`, `(x − 0x20202020) & ~x & 0x80808080` bytes below 0x20; a byte ≥ 0x80
 * is never marked itself (its ~x bit is clear), and the lowest marked byte is always a
 * true one (a borrow only runs upwards from a true one), which little-endian puts first.
 */
function stopAt(b: Buffer, dv: DataView, p: number): number {
  const last = b.length - 4;
  while (p <= last) {
    const x = dv.getInt32(p, true);
    const v = x ^ 0x22222222;
    const m = (((v - 0x01010101) & ~v) | ((x - 0x20202020) & ~x)) & 0x80808080;
    if (m !== 0) return p + ((31 - Math.clz32(m & -m)) >> 3);
    p += 4;
  }
  while (p < b.length) {
    const c = b[p]!;
    if (c === QUOTE || c < 0x20) return p;
    p++;
  }
  return p;
}

/** A key folds into `folded` (printable ASCII: lower-cased, `-` and `_` dropped, as fold.ts folds it). */
function foldsTo(b: Buffer, start: number, end: number, folded: Uint8Array): boolean {
  let j = 0;
  for (let k = start; k < end; k++) {
    let c = b[k]!;
    if (c === MINUS || c === 0x5f) continue;
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (j >= folded.length || c !== folded[j]) return false;
    j++;
  }
  return j === folded.length;
}

function sameBytes(b: Buffer, start: number, end: number, want: Uint8Array): boolean {
  if (end - start !== want.length) return false;
  for (let k = 0; k < want.length; k++) if (b[start + k] !== want[k]) return false;
  return true;
}

/** The whole number bytes [start, end) spell, when it is one from 1 to MAX_PAGING without sign, fraction or exponent; else 0. */
function pagingNumber(b: Buffer, start: number, end: number): number {
  if (end - start > 8 || b[start] === ZERO) return 0;
  let n = 0;
  for (let k = start; k < end; k++) {
    const c = b[k]!;
    if (c < ZERO || c > NINE) return 0;
    n = n * 10 + (c - ZERO);
  }
  return n <= MAX_PAGING ? n : 0;
}

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= ZERO && c <= NINE;
}

/** The end of the number at `i`, or FAIL (RFC 8259: no leading zero, no bare dot, no empty exponent). */
function numberEnd(b: Buffer, i: number): number {
  if (b[i] === MINUS) i++;
  if (b[i] === ZERO) i++;
  else if (isDigit(b[i])) {
    do i++;
    while (isDigit(b[i]));
  } else return FAIL;
  if (b[i] === DOT) {
    if (!isDigit(b[++i])) return FAIL;
    do i++;
    while (isDigit(b[i]));
  }
  const e = b[i];
  if (e === 0x65 || e === 0x45) {
    const s = b[++i];
    if (s === 0x2b || s === MINUS) i++;
    if (!isDigit(b[i])) return FAIL;
    do i++;
    while (isDigit(b[i]));
  }
  return i;
}

/** The first byte at or after `i` that is not JSON whitespace. */
function skipSpace(b: Buffer, i: number): number {
  for (;;) {
    const c = b[i];
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
    else return i;
  }
}

/**
 * One walk over the bytes between strings. Every method takes the index where its part
 * starts (whitespace skipped) and returns the index after it, or FAIL at the first thing
 * it cannot prove. One instance serves every scan (a scan is synchronous).
 */
class Scanner {
  b: Buffer = NO_BYTES;
  dv: DataView = NO_VIEW;
  /** The next backslash at or after the walk (b.length when none is left): see the module comment. */
  bs = 0;
  /** Keys are looked at byte by byte (the body holds a byte ≥ 0x7f somewhere). */
  keyBytes = false;
  f: ScanFields | null = null;
  out: ListScan | null = null;
  /** key(): the checked field the key just read names, or NO_FIELD. */
  field = NO_FIELD;

  /**
   * The closing quote of the string that opens at `i`, its escapes read; or FAIL. With
   * `plain`, a string holding an escape fails too.
   */
  stringEnd(i: number, plain: boolean): number {
    const b = this.b;
    let p = stopAt(b, this.dv, i + 1);
    if (b[p] !== QUOTE) return FAIL;
    let bs = this.bs;
    if (bs > p) return p;
    if (plain) return FAIL;
    for (;;) {
      // The escapes before the quote at p, in order; the last may be `\"`, escaping p itself.
      let next = p;
      while (bs < p) {
        const len = escapeLength(b, bs);
        if (len === 0) return FAIL;
        next = bs + len;
        bs = b.indexOf(BACKSLASH, next);
        if (bs === -1) bs = b.length;
      }
      this.bs = bs;
      if (next <= p) return p;
      p = stopAt(b, this.dv, next);
      if (b[p] !== QUOTE) return FAIL;
    }
  }

  /** A key and its colon at `i` (a quote); sets `field`. A look-alike of a checked field fails. */
  key(i: number): number {
    const b = this.b;
    const start = i + 1;
    const end = this.stringEnd(i, true);
    if (end === FAIL) return FAIL;
    if (this.keyBytes) for (let k = start; k < end; k++) if (b[k]! >= DEL) return FAIL;
    const f = this.f!;
    let field = NO_FIELD;
    if (end - start >= f.minKey) {
      const names = f.nameBytes;
      for (let k = 0; k < names.length; k++) {
        if (sameBytes(b, start, end, names[k]!)) {
          field = k;
          break;
        }
      }
      if (field === NO_FIELD) for (const folded of f.foldedBytes) if (foldsTo(b, start, end, folded)) return FAIL;
    }
    this.field = field;
    let j = end + 1;
    if (b[j]! <= 0x20) j = skipSpace(b, j);
    if (b[j] !== COLON) return FAIL;
    j++;
    return b[j]! <= 0x20 ? skipSpace(b, j) : j;
  }

  /** A string, number or literal at `i`. */
  scalar(i: number): number {
    const b = this.b;
    const c = b[i];
    if (c === QUOTE) {
      const end = this.stringEnd(i, false);
      return end === FAIL ? FAIL : end + 1;
    }
    if (c === 0x74) return b[i + 1] === 0x72 && b[i + 2] === 0x75 && b[i + 3] === 0x65 ? i + 4 : FAIL;
    if (c === 0x66) return b[i + 1] === 0x61 && b[i + 2] === 0x6c && b[i + 3] === 0x73 && b[i + 4] === 0x65 ? i + 5 : FAIL;
    if (c === 0x6e) return b[i + 1] === 0x75 && b[i + 2] === 0x6c && b[i + 3] === 0x6c ? i + 4 : FAIL;
    return numberEnd(b, i);
  }

  /** Any value at `i` at nesting `depth` (the strict parser's count): no key in it may be a checked field or look like one. */
  value(i: number, depth: number): number {
    if (depth > MAX_DEPTH) return FAIL;
    const b = this.b;
    const c = b[i];
    if (c === LBRACE) {
      i++;
      if (b[i]! <= 0x20) i = skipSpace(b, i);
      if (b[i] === RBRACE) return i + 1;
      for (;;) {
        if (b[i] !== QUOTE) return FAIL;
        i = this.key(i);
        if (i === FAIL || this.field !== NO_FIELD) return FAIL;
        i = this.value(i, depth + 1);
        if (i === FAIL) return FAIL;
        if (b[i]! <= 0x20) i = skipSpace(b, i);
        const d = b[i++];
        if (d === RBRACE) return i;
        if (d !== COMMA) return FAIL;
        if (b[i]! <= 0x20) i = skipSpace(b, i);
      }
    }
    if (c === LBRACKET) {
      i++;
      if (b[i]! <= 0x20) i = skipSpace(b, i);
      if (b[i] === RBRACKET) return i + 1;
      for (;;) {
        i = this.value(i, depth + 1);
        if (i === FAIL) return FAIL;
        if (b[i]! <= 0x20) i = skipSpace(b, i);
        const d = b[i++];
        if (d === RBRACKET) return i;
        if (d !== COMMA) return FAIL;
        if (b[i]! <= 0x20) i = skipSpace(b, i);
      }
    }
    return this.scalar(i);
  }

  /** An item at `i` (`{`, at `depth`): each checked field once, with an unescaped value the key may see. */
  item(i: number, depth: number): number {
    const b = this.b;
    const f = this.f!;
    let seen = 0;
    i++;
    if (b[i]! <= 0x20) i = skipSpace(b, i);
    if (b[i] === RBRACE) return FAIL; // no owner
    for (;;) {
      if (b[i] !== QUOTE) return FAIL;
      i = this.key(i);
      if (i === FAIL) return FAIL;
      const k = this.field;
      if (k === NO_FIELD) {
        i = this.value(i, depth + 1);
        if (i === FAIL) return FAIL;
      } else {
        const bit = 1 << k;
        if ((seen & bit) !== 0 || b[i] !== QUOTE) return FAIL;
        seen |= bit;
        const end = this.stringEnd(i, true);
        if (end === FAIL) return FAIL;
        let ok = false;
        for (const v of f.allowed[k]!) {
          if (sameBytes(b, i + 1, end, v)) {
            ok = true;
            break;
          }
        }
        if (!ok) return FAIL;
        i = end + 1;
      }
      if (b[i]! <= 0x20) i = skipSpace(b, i);
      const d = b[i++];
      if (d === RBRACE) break;
      if (d !== COMMA) return FAIL;
      if (b[i]! <= 0x20) i = skipSpace(b, i);
    }
    return seen === (1 << f.names.length) - 1 ? i : FAIL;
  }

  /** `[item, …]` at `i`, at `depth`, recording each item's range for the rendering. */
  items(i: number, depth: number): number {
    const b = this.b;
    const out = this.out;
    if (out !== null) out.count = 0;
    i++;
    if (b[i]! <= 0x20) i = skipSpace(b, i);
    if (b[i] === RBRACKET) return i + 1;
    for (;;) {
      if (b[i] !== LBRACE || depth + 1 > MAX_DEPTH) return FAIL;
      const start = i;
      i = this.item(i, depth + 1);
      if (i === FAIL) return FAIL;
      if (out !== null) {
        out.ranges[2 * out.count] = start;
        out.ranges[2 * out.count + 1] = i;
        out.count++;
      }
      if (b[i]! <= 0x20) i = skipSpace(b, i);
      const d = b[i++];
      if (d === RBRACKET) return i;
      if (d !== COMMA) return FAIL;
      if (b[i]! <= 0x20) i = skipSpace(b, i);
    }
  }

  /** A bare array of items, or an envelope: `data` once, `page` and `perPage` at most once, every other field a scalar and no field a checked one. */
  list(i: number): number {
    const b = this.b;
    const out = this.out;
    const c = b[i];
    if (out !== null) {
      out.bare = c === LBRACKET;
      out.count = 0;
      out.page = 0;
      out.perPage = 0;
    }
    if (c === LBRACKET) return this.items(i, 0);
    if (c !== LBRACE) return FAIL;
    i++;
    if (b[i]! <= 0x20) i = skipSpace(b, i);
    let data = false;
    let page = false;
    let perPage = false;
    for (;;) {
      if (b[i] !== QUOTE) return FAIL;
      const ks = i + 1;
      i = this.key(i);
      if (i === FAIL || this.field !== NO_FIELD) return FAIL;
      // The key is b[ks] up to its closing quote.
      const isData = b[ks] === 0x64 && b[ks + 1] === 0x61 && b[ks + 2] === 0x74 && b[ks + 3] === 0x61 && b[ks + 4] === QUOTE;
      const isPage = !isData && b[ks] === 0x70 && b[ks + 1] === 0x61 && b[ks + 2] === 0x67 && b[ks + 3] === 0x65 && b[ks + 4] === QUOTE;
      const isPerPage = !isData && !isPage && sameBytes(b, ks, ks + 7, PER_PAGE) && b[ks + 7] === QUOTE;
      const v = b[i];
      if (isData) {
        if (data || v !== LBRACKET) return FAIL;
        i = this.items(i, 1);
        if (i === FAIL) return FAIL;
        data = true;
      } else {
        if ((isPage && page) || (isPerPage && perPage) || v === LBRACE || v === LBRACKET) return FAIL;
        const at = i;
        i = this.scalar(i);
        if (i === FAIL) return FAIL;
        if (isPage || isPerPage) {
          const n = pagingNumber(b, at, i);
          if (isPage) page = true;
          else perPage = true;
          if (out !== null) {
            if (isPage) out.page = n;
            else out.perPage = n;
          }
        }
      }
      if (b[i]! <= 0x20) i = skipSpace(b, i);
      const d = b[i++];
      if (d === RBRACE) return data ? i : FAIL;
      if (d !== COMMA) return FAIL;
      if (b[i]! <= 0x20) i = skipSpace(b, i);
    }
  }
}

const scanner = new Scanner();

/**
 * The proof as the WebAssembly walk (wasm/), chosen once at start-up; the
 * JavaScript walk below when this runtime has no WebAssembly SIMD. Both answer alike (the
 * differential test holds them to one another and to the full check).
 */
const wasm = createWasmScannerOrNull();

function createWasmScannerOrNull(): ReturnType<typeof createWasmScanner> {
  try {
    const w = createWasmScanner();
    // A runtime that runs the module wrongly must not be trusted with a proof.
    const self = scanFields({ fields: new Map([['k', ['k']]]) } as unknown as CompiledResource, [{ attribute: 'k', values: ['v'] }]);
    if (w === null || self === null) return null;
    const ok = w.prove(Buffer.from('{"data":[{"k":"v","n":[1,"\\u00e9"]}]}'), self, 'list') === true && w.prove(Buffer.from('[{"k":"w"}]'), self, 'list') === false;
    return ok ? w : null;
  } catch {
    return null;
  }
}

/** Which walk provenClean runs. */
export const scanEngine: 'wasm' | 'js' = wasm === null ? 'js' : 'wasm';

/** The answer is clean; `body` may be the pieces it arrived in (the JavaScript walk joins them). */
export function provenClean(body: Buffer | readonly Buffer[], fields: ScanFields, shape: ScanShape, out?: ListScan): boolean {
  if (wasm !== null) {
    const proven = wasm.prove(body, fields, shape, out);
    if (proven !== undefined) return proven;
  }
  return jsProvenClean(Buffer.isBuffer(body) ? body : Buffer.concat(body as Buffer[]), fields, shape, out);
}

/** The JavaScript walk. */
export function jsProvenClean(body: Buffer, fields: ScanFields, shape: ScanShape, out?: ListScan): boolean {
  const ascii = isAscii(body);
  if (!ascii && !isUtf8(body)) return false;
  const s = scanner;
  s.b = body;
  s.dv = body.length === 0 ? NO_VIEW : new DataView(body.buffer, body.byteOffset, body.length);
  const bs = body.indexOf(BACKSLASH);
  s.bs = bs === -1 ? body.length : bs;
  s.keyBytes = !ascii || body.indexOf(DEL) !== -1;
  s.f = fields;
  s.out = out ?? null;
  let i = skipSpace(body, 0);
  i = shape === 'list' ? s.list(i) : body[i] === LBRACE ? s.item(i, 0) : FAIL;
  s.b = NO_BYTES;
  s.dv = NO_VIEW;
  return i !== FAIL && skipSpace(body, i) === body.length;
}
