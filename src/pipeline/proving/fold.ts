/**
 * How Keygate compares names (JSON keys, query parameter names) that some backend might
 * read as one: the widest reading any common framework applies, so that two names this
 * calls different are different to every backend. Folding more than a backend does only
 * refuses more; folding less would let two names mean one thing there and two here.
 *
 * - case: Go's encoding/json and ASP.NET match keys case-insensitively (Unicode simple
 *   folding: `K` KELVIN SIGN is `k`, `ſ` LONG S is `s`), Java's equalsIgnoreCase compares
 *   upper- and lower-cased characters (dotless `ı` is `i`);
 * - compatibility forms: a backend that NFKC-normalises reads fullwidth `ｉｄ` as `id`;
 * - controls: a C parser stops a key at NUL, others drop control and format characters;
 * - separators (`caseFold` keeps them, `foldName` drops them): Rails apps that transform
 *   camelCase keys to snake_case read `deviceId` and `device_id` as one key.
 */

const SEPARATORS = /[-_]/g;
/**
 * Marks, controls, format characters, lone surrogates (a UTF-8 encoder writes U+FFFD, or
 * drops them), U+FFFD itself, noncharacters (U+FFFE, U+FFFF, …: sanitisers strip them) and
 * the blank fillers that render as nothing (Hangul fillers, the braille blank).
 */
const MARKS_AND_CONTROLS = /[\p{M}\p{Cc}\p{Cf}\p{Cs}\p{Noncharacter_Code_Point}\uFFFD\u115F\u1160\u3164\uFFA0\u2800]/gu;

/** Visible ASCII and space: folded by lower-casing alone (the usual case; no regex, no normalisation). */
function isPlainAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/** Case- and compatibility-folded, with controls removed; `-` and `_` kept. */
export function caseFold(name: string): string {
  if (isPlainAscii(name)) return name.toLowerCase();
  const nul = name.indexOf('\u0000');
  const head = nul === -1 ? name : name.slice(0, nul);
  return head.normalize('NFKD').replace(MARKS_AND_CONTROLS, '').toUpperCase().toLowerCase().normalize('NFKC');
}

/** caseFold without `-` and `_`: the form two names are compared in. */
export function foldName(name: string): string {
  const folded = caseFold(name);
  return folded.includes('_') || folded.includes('-') ? folded.replace(SEPARATORS, '') : folded;
}

/** True when the name holds a character some backend would drop or stop at (C0/C1 controls, DEL, format characters, a lone surrogate or U+FFFD). */
export function hasControl(name: string): boolean {
  if (isPlainAscii(name)) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return FORMAT.test(name);
}

const FORMAT = /[\p{Cf}\p{Cs}\p{Noncharacter_Code_Point}\uFFFD\u115F\u1160\u3164\uFFA0\u2800]/u;
