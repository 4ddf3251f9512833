import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { checksum, generateKey, hashKey, parseKey } from '../../src/keys/key-format.ts';

describe('key format', () => {
  it('generates prefix + 32 base62 + 6 checksum characters that parse back', () => {
    for (const prefix of ['api_', 'scoped_'] as const) {
      const k = generateKey(prefix);
      expect(k).toMatch(new RegExp(`^${prefix}[0-9A-Za-z]{38}$`));
      expect(parseKey(k)).toBe(prefix);
    }
  });

  it('has at least 128 bits of entropy: no repeats and every alphabet position used', () => {
    const keys = new Set(Array.from({ length: 2000 }, () => generateKey('api_')));
    expect(keys.size).toBe(2000);
    const bodies = [...keys].map((k) => k.slice(4, 36)).join('');
    expect(new Set(bodies).size).toBe(62);
  });

  it('computes the checksum exactly as zlib CRC-32 in base62, so keys minted before stay valid', () => {
    const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
    const zlibChecksum = (s: string): string => {
      let v = crc32(s);
      let out = '';
      for (let i = 0; i < 6; i++) {
        out = alphabet[v % 62] + out;
        v = Math.floor(v / 62);
      }
      return out;
    };
    for (let i = 0; i < 2000; i++) {
      const head = generateKey(i % 2 === 0 ? 'api_' : 'scoped_').slice(0, -6);
      expect(checksum(head)).toBe(zlibChecksum(head));
    }
    // A key minted by an earlier release (zlib CRC-32) still parses.
    const head = 'api_' + 'Z'.repeat(32);
    expect(parseKey(head + zlibChecksum(head))).toBe('api_');
  });

  it('refuses a check suffix that spells the right CRC plus 2^32 (one spelling per key)', () => {
    const k = generateKey('api_');
    const head = k.slice(0, -6);
    const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
    let v = crc32(head) + 2 ** 32;
    let alt = '';
    for (let i = 0; i < 6; i++) {
      alt = alphabet[v % 62] + alt;
      v = Math.floor(v / 62);
    }
    expect(parseKey(head + alt)).toBeUndefined();
  });

  it('refuses any single-character change (checksum)', () => {
    const k = generateKey('scoped_');
    let refused = 0;
    for (let i = 'scoped_'.length; i < k.length; i++) {
      const c = k[i] === 'x' ? 'y' : 'x';
      if (parseKey(k.slice(0, i) + c + k.slice(i + 1)) === undefined) refused++;
    }
    expect(refused).toBe(k.length - 'scoped_'.length);
  });

  it.each(['', 'api_', 'api_short', 'API_' + 'a'.repeat(38), 'connect_' + 'a'.repeat(38), 'api_' + 'é'.repeat(38), 'api_' + '-'.repeat(38)])('refuses %j', (k) => {
    expect(parseKey(k)).toBeUndefined();
  });

  it('a forged body with a correct checksum still needs the store; the checksum is not a secret', () => {
    const head = 'api_' + 'A'.repeat(32);
    expect(parseKey(head + checksum(head))).toBe('api_');
  });

  it('hashes with SHA-256 hex', () => {
    expect(hashKey('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
