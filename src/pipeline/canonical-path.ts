import { KeygateError } from '../errors/keygate-error.ts';
import { pathHoldsKey } from '../keys/key-format.ts';

export interface Target {
  /** Decoded path segments, exactly what the policy matches against. */
  readonly segments: readonly string[];
  /** The canonical encoding of `segments`: what the backend receives. */
  readonly path: string;
  /** The raw query string without `?`, or '' when absent. */
  readonly query: string;
}

// pchar (RFC 3986 §3.3) minus ';' (matrix parameters are refused) and minus '%' (handled apart).
const SAFE = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,=:@") SAFE[c.charCodeAt(0)] = 1;

function bad(detail: string): never {
  throw new KeygateError('INVALID_PATH', { detail });
}

const NEEDLESS_ESCAPES = /%(24|26|2B|2C|3D|3A|40)/g;

function encodeSegment(decoded: string): string {
  // encodeURIComponent escapes a few pchar characters that need no escape; put them back so
  // the canonical form is the shortest one.
  return encodeURIComponent(decoded).replace(NEEDLESS_ESCAPES, (m) => decodeURIComponent(m));
}

/** True when `raw` needs no decoding; refuses `;` and `\\` outright. */
function isPlain(raw: string): boolean {
  let plain = true;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x3b) bad('matrix parameter (;) in path');
    if (c === 0x5c) bad('backslash in path');
    if (c >= 128 || SAFE[c] === 0) plain = false;
  }
  if (plain && (raw === '.' || raw === '..')) bad('dot segment in path');
  return plain;
}

/** A segment that holds escapes or other characters: decoded, checked, re-encoded. */
function decodeSegment(raw: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    bad('invalid percent-encoding in path');
  }
  for (let i = 0; i < decoded.length; i++) {
    const c = decoded.charCodeAt(i);
    if (c === 0x2f) bad('encoded slash (%2F) in path segment');
    if (c === 0x5c) bad('encoded backslash (%5C) in path segment');
    if (c === 0x3b) bad('encoded matrix parameter (;) in path segment');
    if (c < 0x20 || c === 0x7f) bad('control character (e.g. %00) in path segment');
  }
  if (decoded === '.' || decoded === '..') bad('encoded dot segment in path');
  return decoded;
}

/**
 * Invariant 2: the path the policy judged is the path the backend receives. Anything
 * that two parsers could read differently is refused rather than guessed at.
 */
export function canonicalize(url: string): Target {
  if (url.charCodeAt(0) !== 0x2f) bad('request target is not in origin-form (absolute-form, authority-form or *)');
  if (url.charCodeAt(1) === 0x2f) bad('empty segment (//) in path');
  if (url.includes('#')) bad('fragment in request target');
  const q = url.indexOf('?');
  const rawPath = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q + 1);
  if (rawPath === '/') return { segments: [], path: '/', query };
  const segments = rawPath.slice(1).split('/');
  // The usual path is all plain segments: it is its own canonical form, so it is kept as
  // sent and only a path with escapes is rebuilt.
  let path: string | null = null;
  for (let i = 0; i < segments.length; i++) {
    const raw = segments[i]!;
    if (raw === '') bad('empty segment (// or trailing /) in path');
    if (isPlain(raw)) {
      if (path !== null) path += '/' + raw;
      continue;
    }
    const decoded = decodeSegment(raw);
    segments[i] = decoded;
    // The segments before the first rebuilt one were plain: they are copied as they are.
    path ??= i === 0 ? '' : '/' + segments.slice(0, i).join('/');
    path += '/' + encodeSegment(decoded);
  }
  const canonical = path ?? rawPath;
  // Invariant 6: a key is never forwarded, not even one a client put in the path (the
  // checksum tells it from an id that only looks like one).
  if (pathHoldsKey(canonical)) bad('a key in the path (never forwarded)');
  return { segments, path: canonical, query };
}
