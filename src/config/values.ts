import { isIP } from 'node:net';
import { isValidReferenceId, KEY_TYPES, type KeyType, REFERENCE_ID_RULE } from '../keys/key-record.ts';
import { OriginRuleError, parseOrigin, parseRedirect } from '../keys/origin-rules.ts';
import { parseStoreLocation, StoreUrlError } from '../keys/store-url.ts';
import { parseRateLimitStore } from '../limits/store-url.ts';
import { parseDuration } from '../policy/drafts.ts';
import { ValueError } from './config-error.ts';

/** Value parsers for options tables: each takes the text and returns the value or throws ValueError. */

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[^:\s[\]]+):(\d{1,5})$/;

export function hostPort(raw: string): HostPort {
  const m = HOST_PORT.exec(raw);
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || port > 65535) throw new ValueError(`"${raw}" is not HOST:PORT (e.g. 0.0.0.0:8080, [::1]:8080)`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/** An http(s) origin with no path: Keygate forwards paths unchanged. Returns the URL's origin. */
export function httpOrigin(raw: string): string {
  const url = httpUrl(raw);
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') throw new ValueError(`"${raw}" must be an origin without a path (Keygate forwards paths unchanged)`);
  return url.origin;
}

/** An http(s) URL that other URLs are built under (a path prefix is allowed); returned without a trailing slash. */
export function baseUrl(raw: string): string {
  const url = httpUrl(raw);
  if (url.search !== '' || url.hash !== '') throw new ValueError(`"${raw}" must not have a query or fragment`);
  if (url.username !== '' || url.password !== '') throw new ValueError(`"${raw}" must not hold credentials`);
  return url.origin + url.pathname.replace(/\/+$/, '');
}

function httpUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ValueError(`"${raw}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ValueError(`"${raw}" must be http:// or https://`);
  return url;
}

export function wholeNumber(unit: string, bounds: { min?: number; max?: number } = {}): (raw: string) => number {
  const min = bounds.min ?? 1;
  return (raw) => {
    const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
    const range = bounds.max === undefined ? `at least ${min}` : `${min} to ${bounds.max}`;
    if (!Number.isSafeInteger(n) || n < min || (bounds.max !== undefined && n > bounds.max)) {
      throw new ValueError(`"${raw}" must be a whole number of ${unit}, ${range}`);
    }
    return n;
  };
}

/** Only `true` and `false`: `no`, `0` or `off` are refused rather than read as either. */
export function boolean(raw: string): boolean {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new ValueError(`"${raw}" must be true or false`);
}

export function oneOf<const T extends string>(choices: readonly T[]): (raw: string) => T {
  return (raw) => {
    if (!(choices as readonly string[]).includes(raw)) throw new ValueError(`"${raw}" must be one of ${choices.join(', ')}`);
    return raw as T;
  };
}

/** `500ms`, `30s`, `15m`, `12h`, `30d`; returned in milliseconds. */
export function duration(bounds: { max?: { ms: number; text: string } } = {}): (raw: string) => number {
  return (raw) => {
    const ms = parseDuration(raw);
    if (ms === undefined || ms <= 0) throw new ValueError(`"${raw}" must be a duration like 30s, 15m, 12h or 30d`);
    if (bounds.max !== undefined && ms > bounds.max.ms) throw new ValueError(`"${raw}" is longer than ${bounds.max.text}`);
    return ms;
  };
}

export function text(raw: string): string {
  return raw;
}

/** A store URL, checked now (scheme, path, schema name) and kept as written. */
/** `--rate-limit-store`: checked by the limits layer's own parser. */
export function rateLimitStoreUrl(raw: string): string {
  try {
    return parseRateLimitStore(raw);
  } catch (err) {
    throw new ValueError((err as Error).message);
  }
}

export function storeUrl(raw: string): string {
  try {
    parseStoreLocation(raw);
  } catch (err) {
    if (err instanceof StoreUrlError) throw new ValueError(err.message);
    throw err;
  }
  return raw;
}

export const keyType: (raw: string) => KeyType = oneOf(KEY_TYPES);

export function referenceId(raw: string): string {
  if (!isValidReferenceId(raw)) throw new ValueError(`must be ${REFERENCE_ID_RULE} (no spaces or control characters)`);
  return raw;
}

/** `attr:value`, the EVRYTHNG condition form; grouped later by parseConditionArgs. */
export function condition(raw: string): string {
  const at = raw.indexOf(':');
  if (at <= 0 || at === raw.length - 1) throw new ValueError(`"${raw}" must be written attribute:value`);
  if (raw.includes(',', at)) throw new ValueError(`"${raw}": values may not contain a comma (repeat the flag instead)`);
  return raw;
}

function originRule(parse: (raw: string) => string): (raw: string) => string {
  return (raw) => {
    try {
      return parse(raw);
    } catch (err) {
      if (err instanceof OriginRuleError) throw new ValueError(err.message);
      throw err;
    }
  };
}

/** A browser origin (`https://app.example.com`), normalised; see keys/origin-rules.ts. */
export const browserOrigin: (raw: string) => string = originRule(parseOrigin);

/** A Connect redirect URL (`https://app.example.com/connected`, `myapp://connected`), normalised. */
export const redirectUrl: (raw: string) => string = originRule(parseRedirect);

/** A page size, or `all`. */
export function limit(raw: string): number {
  if (raw === 'all') return Infinity;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new ValueError(`"${raw}" must be a whole number of keys, at least 1, or all`);
  return n;
}

/**
 * IPv4 or IPv6 addresses, each with an optional `/prefix`, comma-separated; returned as
 * `address/prefix` (a bare address is one host).
 */
export function cidrList(raw: string): string[] {
  const out: string[] = [];
  for (const part of raw.split(',')) {
    const entry = part.trim();
    if (entry === '') continue;
    const slash = entry.indexOf('/');
    const address = slash === -1 ? entry : entry.slice(0, slash);
    const family = isIP(address);
    const max = family === 6 ? 128 : 32;
    const prefix = slash === -1 ? max : /^\d{1,3}$/.test(entry.slice(slash + 1)) ? Number(entry.slice(slash + 1)) : NaN;
    if (family === 0 || !(prefix >= 0 && prefix <= max)) throw new ValueError(`"${entry}" is not an IP address or CIDR range (e.g. 10.0.0.0/8, fd00::/8, 192.0.2.7)`);
    out.push(`${address}/${prefix}`);
  }
  return out;
}

/** `TYPE=RESERVE:MAX[,…]`, checked for form here; the sizes are checked against the pool in serve-config.ts. */
export function shareList(raw: string): Array<{ name: string; reserve: number; max: number }> {
  const out: Array<{ name: string; reserve: number; max: number }> = [];
  for (const part of raw.split(',')) {
    const m = /^\s*([a-z-]+)=(\d+):(\d+)\s*$/.exec(part);
    if (m === null) throw new ValueError(`"${part}" is not TYPE=RESERVE:MAX (e.g. scoped=8:96)`);
    out.push({ name: m[1]!, reserve: Number(m[2]), max: Number(m[3]) });
  }
  return out;
}

/** A whole number of connections, or `auto`. */
export function connectionCap(raw: string): number | 'auto' {
  if (raw === 'auto') return 'auto';
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new ValueError(`"${raw}" must be a whole number of connections, at least 1, or auto`);
  return n;
}
