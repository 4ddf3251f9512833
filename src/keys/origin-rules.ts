/**
 * Where a public key may be used from and where a Connect link may send its user back:
 * the `allowedOrigins` and `allowedRedirects` of a key. Both are exact: no wildcard, no
 * prefix match. Checked once, when a key is created or changed; what is stored is the
 * normalised form, so a comparison at request time is string equality.
 *
 * - An origin is `scheme://host[:port]` (RFC 6454), as a browser sends it in `Origin`:
 *   lower-case scheme and host, no default port, no path, query, fragment or credentials.
 * - A redirect is `scheme://host[:port]/path`, compared on scheme, host, port and path; it
 *   has no query (the Connect flow adds its own parameters), fragment or credentials.
 *   Custom app schemes (`myapp://connected`) are allowed, for mobile apps.
 * - `https:` for any host; `http:` only for loopback hosts (`localhost`, `*.localhost`,
 *   127.0.0.0/8, `[::1]`): a key's origins and redirects over plain HTTP elsewhere would
 *   hand a minted key to anyone on the path.
 */
export class OriginRuleError extends Error {
  override readonly name = 'OriginRuleError';
}

/** Most entries a key may list: each is compared on the request path of a browser request. */
const MAX_ALLOWED_ENTRIES = 50;
const MAX_URL_LENGTH = 2048;

/** Schemes that are never an app's redirect: they run code, read files or leave the app. */
const REFUSED_SCHEMES = new Set(['javascript:', 'data:', 'file:', 'blob:', 'vbscript:', 'about:', 'filesystem:', 'view-source:', 'ftp:', 'ws:', 'wss:', 'mailto:', 'tel:', 'sms:']);
const CUSTOM_SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

export function isLoopbackHost(hostname: string): boolean {
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) return true;
  if (hostname === '[::1]') return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

function parse(raw: string, what: string): URL {
  if (typeof raw !== 'string' || raw === '') throw new OriginRuleError(`${what} must be a non-empty string`);
  if (raw.length > MAX_URL_LENGTH) throw new OriginRuleError(`${what} is longer than ${MAX_URL_LENGTH} characters`);
  // The URL parser drops or repairs what a comparison must not ignore: whitespace, control
  // characters, backslashes, an empty `?` or `#`, a wildcard a reader could take for a pattern.
  if (/[\x00-\x20\x7f\\*]/.test(raw)) throw new OriginRuleError(`${what} "${raw}" holds a space, control character, backslash or *`);
  if (raw.includes('#')) throw new OriginRuleError(`${what} "${raw}" has a fragment`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new OriginRuleError(`${what} "${raw}" is not an absolute URL`);
  }
  // `https://@evil.example` parses with empty credentials: look at the authority as written.
  const authority = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(raw)?.[1] ?? '';
  if (url.username !== '' || url.password !== '' || authority.includes('@')) {
    throw new OriginRuleError(`${what} "${raw}" holds credentials`);
  }
  return url;
}

function checkWebScheme(url: URL, raw: string, what: string): void {
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    throw new OriginRuleError(`${what} "${raw}": http:// only for loopback hosts (localhost, 127.0.0.1, [::1]); use https://`);
  }
}

/** A browser origin, normalised (`https://App.Example.com:443/` → `https://app.example.com`). */
export function parseOrigin(raw: string): string {
  const url = parse(raw, 'origin');
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new OriginRuleError(`origin "${raw}" must be http:// or https://`);
  checkWebScheme(url, raw, 'origin');
  if (url.pathname !== '/' || url.search !== '' || raw.includes('?') || /^[a-z]+:\/\/[^/]*\/./i.test(raw)) {
    throw new OriginRuleError(`origin "${raw}" must be scheme://host[:port], without a path or query`);
  }
  return url.origin;
}

/** scheme://host[:port]/path of a URL, or undefined when it is no redirect Keygate would follow. */
function redirectKey(url: URL): string | undefined {
  if (url.protocol === 'https:' || url.protocol === 'http:') return url.origin + url.pathname;
  if (REFUSED_SCHEMES.has(url.protocol) || url.host === '') return undefined;
  return url.protocol + '//' + url.host + url.pathname;
}

/** A redirect URL to register on a key, normalised for exact comparison. */
export function parseRedirect(raw: string): string {
  const url = parse(raw, 'redirect URL');
  if (url.search !== '' || raw.includes('?')) throw new OriginRuleError(`redirect URL "${raw}" has a query (register scheme://host/path; the Connect flow adds its own parameters)`);
  const special = url.protocol === 'https:' || url.protocol === 'http:';
  if (!special && !CUSTOM_SCHEME.test(raw)) throw new OriginRuleError(`redirect URL "${raw}" must be https://…, http://localhost… or an app scheme written myapp://host/path`);
  if (special) checkWebScheme(url, raw, 'redirect URL');
  const key = redirectKey(url);
  if (key === undefined) throw new OriginRuleError(`redirect URL "${raw}": the scheme ${url.protocol}// cannot be a redirect`);
  return key;
}

/**
 * Whether `candidate` (a redirect a request asks for, perhaps with its own query) is one
 * of `allowed` (normalised by parseRedirect): scheme, host, port and path compared
 * exactly. A candidate with a fragment or credentials never matches.
 */
export function redirectAllowed(allowed: readonly string[], candidate: string): boolean {
  let url: URL;
  try {
    url = parse(candidate, 'redirect URL');
  } catch {
    return false;
  }
  const key = redirectKey(url);
  return key !== undefined && allowed.includes(key);
}

/** Parses a list (origins or redirects), refusing duplicates and more than MAX_ALLOWED_ENTRIES. */
export function parseList(raws: readonly string[], one: (raw: string) => string, what: string): string[] {
  if (raws.length > MAX_ALLOWED_ENTRIES) throw new OriginRuleError(`at most ${MAX_ALLOWED_ENTRIES} ${what}`);
  const out: string[] = [];
  for (const raw of raws) {
    const value = one(raw);
    if (out.includes(value)) throw new OriginRuleError(`${what}: "${raw}" is listed twice`);
    out.push(value);
  }
  return out;
}
