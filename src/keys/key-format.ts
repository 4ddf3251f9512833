import { hash, randomBytes } from 'node:crypto';

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
const KEY_SHAPED_ALL = new RegExp(KEY_SHAPED.source, 'g');

/** Two substring searches on the usual text, which holds neither prefix. */
function mayHoldKey(text: string): boolean {
  return text.includes('api_') || text.includes('scoped_');
}

/** Whether `text` holds something shaped like a key (a typo'd one too: it is nearly the secret). */
export function holdsKey(text: string): boolean {
  return mayHoldKey(text) && KEY_SHAPED.test(text);
}

/**
 * `text` with anything shaped like a key replaced by `{key}`: a client that puts its key in
 * the path (by mistake, or `GET /v1/devices/scoped_…`) must not get it into the log
 * (invariant 6). A percent-encoded key (`%61pi_…`) is found in the decoded text, which is
 * then what is returned (redacted).
 */
export function redactKeys(text: string): string {
  const out = mayHoldKey(text) ? text.replace(KEY_SHAPED_ALL, '{key}') : text;
  if (!out.includes('%')) return out;
  let decoded: string;
  try {
    decoded = decodeURIComponent(out);
  } catch {
    return out;
  }
  return holdsKey(decoded) ? decoded.replace(KEY_SHAPED_ALL, '{key}') : out;
}

/**
 * Whether `text` holds a well-formed key (prefix, body and a checksum that matches): the
 * checksum tells a key from an id that merely looks like one (`openapi_<40 hex>`).
 */
export function holdsWellFormedKey(text: string): boolean {
  if (!mayHoldKey(text)) return false;
  for (const m of text.matchAll(KEY_SHAPED_ALL)) if (parseKey(m[0]) !== undefined) return true;
  return false;
}
