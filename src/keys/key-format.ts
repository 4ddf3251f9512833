import { hash, randomBytes } from 'node:crypto';
import { decodeLeniently } from '../util/lenient-decode.ts';

/**
 * Key layout: PREFIX + BODY + CHECK.
 * - PREFIX is `api_` (server, connect, operator, access-token) or `scoped_` (Texture's
 *   documentation: "Scoped keys are prefixed with scoped_, while traditional API keys are prefixed with api_").
 * - BODY is 32 base62 characters drawn from 24 random bytes: log2(62^32) ≈ 190 bits.
 * - CHECK is the CRC-32 of PREFIX+BODY in 6 base62 characters, so a typo or a forged
 *   random string is refused before the store (or even the cache) is asked.
 */
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const BODY_LENGTH = 32;
const CHECK_LENGTH = 6;
const KEY_PREFIXES = ['api_', 'scoped_'] as const;
export type KeyPrefix = (typeof KEY_PREFIXES)[number];

const IS_BASE62 = new Uint8Array(128);
for (let i = 0; i < ALPHABET.length; i++) IS_BASE62[ALPHABET.charCodeAt(i)] = 1;

// CRC-32 (IEEE, as zlib's) over the key's characters, all ASCII by the time it runs. In
// JavaScript rather than node:zlib's crc32 so that checking a key on every request
// converts no string to a buffer: about 40 table lookups.
const CRC_TABLE = new Int32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  CRC_TABLE[n] = c;
}

/** CRC-32 of the first `end` characters of `ascii` (every char code < 128). */
function crc32Ascii(ascii: string, end: number): number {
  let crc = -1;
  for (let i = 0; i < end; i++) crc = CRC_TABLE[(crc ^ ascii.charCodeAt(i)) & 0xff]! ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

const BASE62_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) BASE62_VALUE[ALPHABET.charCodeAt(i)] = i;

function base62Fixed(value: number, width: number): string {
  let out = '';
  let v = value >>> 0;
  for (let i = 0; i < width; i++) {
    out = ALPHABET[v % 62] + out;
    v = Math.floor(v / 62);
  }
  return out;
}

function randomBase62(length: number): string {
  // Rejection sampling keeps every character uniform (256 is not a multiple of 62).
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248 && out.length < length) out += ALPHABET[byte % 62];
    }
  }
  return out;
}

export function checksum(prefixAndBody: string): string {
  return base62Fixed(crc32Ascii(prefixAndBody, prefixAndBody.length), CHECK_LENGTH);
}

export function generateKey(prefix: KeyPrefix): string {
  const head = prefix + randomBase62(BODY_LENGTH);
  return head + checksum(head);
}

/** Returns the prefix when `key` is well-formed, or undefined. No allocation for obvious garbage. */
export function parseKey(key: string): KeyPrefix | undefined {
  let prefix: KeyPrefix;
  if (key.startsWith('api_')) prefix = 'api_';
  else if (key.startsWith('scoped_')) prefix = 'scoped_';
  else return undefined;
  if (key.length !== prefix.length + BODY_LENGTH + CHECK_LENGTH) return undefined;
  for (let i = prefix.length; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c >= 128 || IS_BASE62[c] === 0) return undefined;
  }
  // The check characters are compared as the number they spell, without building either
  // string: 62^6 > 2^32, so each CRC has exactly one spelling (as with base62Fixed), and
  // the value (< 62^6) is exact in a double.
  const split = key.length - CHECK_LENGTH;
  let check = 0;
  for (let i = split; i < key.length; i++) check = check * 62 + BASE62_VALUE[key.charCodeAt(i)]!;
  return check === crc32Ascii(key, split) ? prefix : undefined;
}

/** The store keeps only this; the plaintext is shown once at creation. */
export function hashKey(key: string): string {
  return hash('sha256', key, 'hex');
}

export function newKeyId(): string {
  return 'key_' + randomBase62(16);
}

/** A key's shape: a prefix, then BODY + CHECK in base62 (38 characters), checksum or not. */
const KEY_SHAPED = /(?:api|scoped)_[0-9A-Za-z]{38}/;
/** The same in any case of its prefix (`Scoped_…` carries the same secret). */
const KEY_SHAPED_ANY_CASE = new RegExp(KEY_SHAPED.source, 'gi');
const KEY_SHAPED_ONE_ANY_CASE = new RegExp(KEY_SHAPED.source, 'i');

/** Whether `text` holds something shaped like a key, in any case of its prefix (a typo'd one too: it is nearly the secret). */
export function holdsKey(text: string): boolean {
  return mayHoldKey(text) && KEY_SHAPED_ONE_ANY_CASE.test(text);
}

/** A key prefix followed by another separator than `_` (up to three characters), then a key's worth of base62. */
const LOOSE_PREFIX = /(api|scoped)[^0-9A-Za-z]{1,3}(?=[0-9A-Za-z]{38})/gi;

/**
 * holdsKey for text stored and shown with a key or a link (names, descriptions,
 * referenceIds, condition values, origins, link fields): the secret is there too when the
 * text spells it percent-encoded (`scoped%5F…`, also twice), in compatibility forms
 * (fullwidth `ｓｃｏｐｅｄ_…`) or with another separator (`scoped.…`, `scoped+…`). Off the
 * request path: the management API and the Connect flow only.
 */
export function holdsKeyLoosely(text: string): boolean {
  if (holdsKey(text)) return true;
  const plain = decodeLeniently(text).normalize('NFKC');
  const loose = plain.replace(LOOSE_PREFIX, '$1_');
  // More separators, or the bare body, count with a valid checksum (a name may be any text).
  return (loose !== text && holdsKey(loose)) || spellsKey(plain);
}

/** A key prefix, up to eight other characters in place of its `_`, then a key's worth of base62. */
const LOOSE_KEY = /(api|scoped)[^0-9A-Za-z]{0,8}([0-9A-Za-z]{38})/gi;
/** A key's body standing alone (the prefix is public: the 38 characters are the whole secret). */
const BARE_BODY = /(?<![0-9A-Za-z])[0-9A-Za-z]{38}(?![0-9A-Za-z])/g;
const BARE_BODY_ONE = new RegExp(BARE_BODY.source);

/** `body` is a key's 38 characters under one of the prefixes: its checksum holds (a false match is 1 in 62^6). */
function isKeyBody(body: string): boolean {
  return parseKey(`api_${body}`) !== undefined || parseKey(`scoped_${body}`) !== undefined;
}

/** Whether `text` (plain, decoded) spells a key with other separators, or holds a bare body, with a valid checksum. */
function spellsKey(text: string): boolean {
  if (LOOSE_KEY_ONE.test(text)) {
    for (const m of text.matchAll(LOOSE_KEY)) if (parseKey(`${m[1]!.toLowerCase()}_${m[2]!}`) !== undefined) return true;
  }
  if (BARE_BODY_ONE.test(text)) {
    for (const m of text.matchAll(BARE_BODY)) if (isKeyBody(m[0])) return true;
  }
  return false;
}

/**
 * `text` with every spelling spellsKey finds replaced by `{key}`, after redactKeys: for what
 * Keygate writes back or logs of a client's text (an error's field, a refusal's detail).
 */
export function redactKeyLike(text: string): string {
  const out = redactKeys(text);
  if (out.length < 38 || !spellsKey(out)) return out;
  return out.replace(LOOSE_KEY, (m, p: string, body: string) => (parseKey(`${p.toLowerCase()}_${body}`) !== undefined ? '{key}' : m)).replace(BARE_BODY, (m) => (isKeyBody(m) ? '{key}' : m));
}
/** Long enough to be the base64 of a key (42 characters or more encode to 56). */
const BASE64_RUN = /[0-9A-Za-z+/_-]{56,}/g;
const LOOSE_KEY_ONE = new RegExp(LOOSE_KEY.source, 'i');
const RUNS = { base62: 0, base64: 0, other: false };

/**
 * Whether `text` has a run of 38 base62 characters (`base62`) or of 56 base64 ones
 * (`base64`), either of which any spelling of a key holds, and whether it holds a `%`
 * (`other`). A run that long covers one of the positions 37, 75, 113,
 * …, so only the runs through those are measured: a user agent of 130 characters costs
 * three looks. One shared result: no allocation.
 */
function longestRuns(text: string): { base62: number; base64: number; other: boolean } {
  let max62 = 0;
  let max64 = 0;
  for (let p = KEY_RUN - 1; p < text.length; p += KEY_RUN) {
    const c = text.charCodeAt(p);
    const k = c < 128 ? CLASS[c]! : 0;
    if (k !== ALNUM && k !== B64) continue;
    let a = p;
    while (a > 0 && isB64(text.charCodeAt(a - 1))) a--;
    let b = p + 1;
    while (b < text.length && isB64(text.charCodeAt(b))) b++;
    if (b - a > max64) max64 = b - a;
    // The base62 runs inside this base64 one.
    let run = 0;
    for (let i = a; i < b; i++) {
      run = CLASS[text.charCodeAt(i)] === ALNUM ? run + 1 : 0;
      if (run > max62) max62 = run;
    }
  }
  RUNS.base62 = max62;
  RUNS.base64 = max64;
  RUNS.other = text.includes('%');
  return RUNS;
}

const KEY_RUN = 38;
const BEYOND_ASCII = /[^\x00-\x7e]/;

function isB64(c: number): boolean {
  return c < 128 && CLASS[c]! !== 0 && CLASS[c]! !== OTHER;
}

const ALNUM = 1;
const B64 = 2;
const OTHER = 3;
/** Per ASCII code: base62, the other base64 characters (`+ / _ -`), `%` and DEL (OTHER), or none (0). */
const CLASS = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const alnum = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
  CLASS[c] = alnum ? ALNUM : c === 43 || c === 47 || c === 95 || c === 45 ? B64 : c === 37 || c === 127 ? OTHER : 0;
}

/** The shortest text a key fits in: its bare body. */
const MIN_KEY_TEXT = 38;

/**
 * holdsKey for a forwarded header or query value, in the spellings a backend could still
 * read a key in: percent-encoded (`api%5F…`, also twice), with a compatibility form of its
 * prefix (`ａｐｉ_…`), with another separator (`api.…`, `api+…`), or base64 (`Authorization: Basic` of `key:`, what
 * `curl -u KEY:` sends). Those spellings count only with a valid checksum, so an ordinary
 * value that merely looks like one (`/api/<38-character id>`) is forwarded as it is. Text
 * shorter than a key returns at once; on the request path only for longer values.
 */
export function holdsKeyEncoded(text: string): boolean {
  if (text.length < MIN_KEY_TEXT) return false;
  if (holdsKey(text)) return true;
  const raw = longestRuns(text);
  // Without `%` and without a long enough run there is no spelling of a key a backend would
  // read back (a fullwidth body is none): the usual value stops here.
  if (!raw.other && raw.base62 < 38 && raw.base64 < 56) return false;
  const plain = raw.other || BEYOND_ASCII.test(text) ? decodeLeniently(text).normalize('NFKC') : text;
  // One pass first: a key's spelling needs a run of 38 base62 characters (56 base64 ones
  // for its base64), which most values (a user agent, a cookie of short fields) lack; the
  // regexes, which retry at every position, then run only on the few that have one.
  const runs = plain === text ? raw : longestRuns(plain);
  if (runs.base62 >= 38 && spellsKey(plain)) return true;
  if (runs.base64 >= 56) {
    for (const m of plain.matchAll(BASE64_RUN)) {
      const decoded = Buffer.from(m[0], m[0].includes('-') || m[0].includes('_') ? 'base64url' : 'base64').toString('latin1');
      if (holdsKey(decoded)) return true;
    }
  }
  return false;
}

/**
 * An `_` after an `i` or a `d` in either case (`api_`, `scoped_`): run on every forwarded
 * header value, where `_` alone is common (cookies), so the regex runs only when a prefix
 * could end there. No allocation.
 */
function mayHoldKey(text: string): boolean {
  for (let i = text.indexOf('_', 1); i !== -1; i = text.indexOf('_', i + 1)) {
    const c = text.charCodeAt(i - 1) | 0x20;
    if (c === 0x69 || c === 0x64) return true;
  }
  return false;
}

/** Decodings tried on a path: a key encoded twice (`%2573coped_…`) is still the key to a backend that decodes twice. */
const MAX_DECODINGS = 3;

/**
 * `text` percent-decoded until nothing changes (at most MAX_DECODINGS times) and in NFKC
 * form (a fullwidth `ａ` is `a`): the spellings a client could give a key in a path.
 */
function unwrapped(text: string): string {
  let out = text;
  for (let i = 0; i < MAX_DECODINGS && out.includes('%'); i++) {
    try {
      out = decodeURIComponent(out);
    } catch {
      break;
    }
  }
  return out.normalize('NFKC');
}

/**
 * `text` with anything shaped like a key replaced by `{key}`: a client that puts its key in
 * the path (by mistake, or `GET /v1/devices/scoped_…`) must not get it into the log
 * (invariant 6). A key in another spelling (percent-encoded, twice, fullwidth, another case
 * of its prefix) is found in the unwrapped text, which is then what is returned (redacted);
 * one split across segments makes the whole text `{key}`. On every access line: text
 * without `_`, `%` or anything beyond ASCII (most paths) is returned after one pass.
 */
export function redactKeys(text: string): string {
  if (!text.includes('_') && !text.includes('%') && isAscii(text)) return text;
  const direct = text.replace(KEY_SHAPED_ANY_CASE, '{key}');
  const plain = unwrapped(direct);
  const redacted = plain.replace(KEY_SHAPED_ANY_CASE, '{key}');
  if (hiddenAcross(redacted)) return '{key}';
  // Unwrapping found no key: the text stays as it was sent.
  return redacted === plain ? direct : redacted;
}

/** A key-shaped run once the segment separators are taken out (a key split across segments). */
function hiddenAcross(text: string): boolean {
  return text.includes('/') && KEY_SHAPED_ONE_ANY_CASE.test(text.replaceAll('/', ''));
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7e) return false;
  return true;
}

/**
 * Whether a path holds a well-formed key (prefix, body and a checksum that matches) in any
 * spelling a backend could read it back from: percent-encoded (once or more), fullwidth,
 * another case of its prefix, split across segments. The checksum tells a key from an id
 * that merely looks like one (`openapi_<40 hex>`). On every request: a path without `_` or
 * `%` (most of them) is done after two searches.
 */
export function pathHoldsKey(path: string): boolean {
  if (!path.includes('_') && !path.includes('%')) return false;
  const plain = unwrapped(path);
  return wellFormedIn(plain) || (plain.includes('/') && wellFormedIn(plain.replaceAll('/', '')));
}

function wellFormedIn(text: string): boolean {
  for (const m of text.matchAll(KEY_SHAPED_ANY_CASE)) {
    const found = m[0];
    const cut = found.indexOf('_');
    if (parseKey(found.slice(0, cut).toLowerCase() + found.slice(cut)) !== undefined) return true;
  }
  return false;
}
