import { hash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * Key layout: PREFIX + BODY + CHECK.
 * - PREFIX is `api_` (server, connect, operator, access-token) or `scoped_` (seed 002:
 *   "Scoped keys are prefixed with scoped_, while traditional API keys are prefixed with api_").
 * - BODY is 32 base62 characters drawn from 24 random bytes: log2(62^32) ≈ 190 bits.
 * - CHECK is the CRC-32 of PREFIX+BODY in 6 base62 characters, so a typo or a forged
 *   random string is refused before the store (or even the cache) is asked.
 */
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const BODY_LENGTH = 32;
const CHECK_LENGTH = 6;
export const KEY_PREFIXES = ['api_', 'scoped_'] as const;
export type KeyPrefix = (typeof KEY_PREFIXES)[number];

const IS_BASE62 = new Uint8Array(128);
for (let i = 0; i < ALPHABET.length; i++) IS_BASE62[ALPHABET.charCodeAt(i)] = 1;

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
  return base62Fixed(crc32(prefixAndBody), CHECK_LENGTH);
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
  const split = key.length - CHECK_LENGTH;
  return checksum(key.slice(0, split)) === key.slice(split) ? prefix : undefined;
}

/** The store keeps only this; the plaintext is shown once at creation. */
export function hashKey(key: string): string {
  return hash('sha256', key, 'hex');
}

export function newKeyId(): string {
  return 'key_' + randomBase62(16);
}
