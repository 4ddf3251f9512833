import { decodeLeniently } from '../util/lenient-decode.ts';

/**
 * Redirect URLs of Connect links. A link token or a minted key goes only to a URL
 * registered on the key (invariant 12): scheme, host, port and path compared exactly,
 * never by prefix; the URL's own query is free (it is kept, and the key and state are
 * added to it); a fragment is refused (it would swallow the added query). Custom app
 * schemes (`myapp://connected`) work when they are registered.
 */
export interface RedirectTarget {
  readonly url: URL;
  /** What is compared with the registered URLs: the URL without its query. */
  readonly match: string;
  /** Where the popup may post the key to: the URL's origin, or null for an app scheme. */
  readonly origin: string | null;
  /** CSP form-action source for the redirect after the last form (an origin, or `scheme:`). */
  readonly formTarget: string;
  /** What the page shows as "you will return to". */
  readonly display: string;
}

const MAX_LENGTH = 2048;

/** The URL without its query, as the URL parser writes it: `myapp:connected` (no authority) is not `myapp://connected`. */
function matchForm(url: URL): string {
  return url.href.slice(0, url.href.length - url.search.length - url.hash.length);
}

/** The target, or the reason (one sentence) the text is not a usable redirect URL. */
export function parseRedirect(text: string): RedirectTarget | string {
  if (text.length > MAX_LENGTH) return `is longer than ${MAX_LENGTH} characters`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'is not an absolute URL';
  }
  if (text.includes('#')) return 'may not have a fragment (#…): the key and state are added to its query';
  if (url.username !== '' || url.password !== '') return 'may not carry a user name or password';
  const web = url.protocol === 'https:' || url.protocol === 'http:';
  if (!web && url.host === '' && url.pathname === '') return 'has no host or path';
  if (url.protocol === 'javascript:' || url.protocol === 'data:' || url.protocol === 'file:' || url.protocol === 'blob:') return `may not use the ${url.protocol} scheme`;
  return {
    url,
    match: matchForm(url),
    origin: web ? url.origin : null,
    formTarget: web ? url.origin : url.protocol,
    display: web ? url.host : url.protocol + '//' + url.host,
  };
}

/** Whether `target` is one of the registered URLs (each compared in the same form). */
export function isRegistered(target: RedirectTarget, registered: readonly string[]): boolean {
  for (const r of registered) {
    const parsed = parseRedirect(r);
    if (typeof parsed !== 'string' && parsed.match === target.match) return true;
  }
  return false;
}

/**
 * A parameter's name folded the ways an app's framework may read it: decoded, cut at NUL (C
 * parsers), NFKC (fullwidth letters), in lower case, without a `[…]` suffix (a list), and
 * with nothing but letters and digits — PHP reads `.`, a space and an unmatched `[` as `_`,
 * others ignore `-` and `_` (`Texture.Scoped-Key[]` and `texture[scoped_key` are
 * `texturescopedkey`).
 */
function appName(pair: string): string {
  const eq = pair.indexOf('=');
  let name = (eq === -1 ? pair : pair.slice(0, eq)).replaceAll('+', ' ');
  try {
    name = decodeURIComponent(name);
  } catch {
    // A bad escape in it: its other escapes (`%00` before a `%FF`) still count.
  }
  name = decodeLeniently(name);
  const nul = name.indexOf('\u0000');
  if (nul !== -1) name = name.slice(0, nul);
  name = name.normalize('NFKC').toLowerCase();
  const open = name.indexOf('[');
  if (open !== -1 && name.indexOf(']', open) !== -1) name = name.slice(0, open);
  return name.replace(/[^a-z0-9]/g, '');
}

/** The pair without any `;`-separated part named like an added name (Python before 3.9.2, old Django and others split on `;` too). */
function withoutAdded(pair: string, names: ReadonlySet<string>): string {
  if (!pair.includes(';')) return names.has(appName(pair)) ? '' : pair;
  return pair
    .split(';')
    .filter((part) => part !== '' && !names.has(appName(part)))
    .join(';');
}

/**
 * `redirectUrl` with the outcome added to its query. The URL's own query is kept byte for
 * byte, less any parameter an app could read as one of the names Keygate adds (in any
 * case, encoding or `;`-separated part): a link's creator chooses the query, and
 * `?texture_scoped_key=<theirs>` must not reach the app before the real one.
 */
export function redirectWith(target: RedirectTarget, params: Readonly<Record<string, string | null>>): string {
  const url = target.url;
  const names = new Set(Object.keys(params).map(appName));
  const kept =
    url.search === ''
      ? []
      : url.search
          .slice(1)
          .split('&')
          .map((pair) => withoutAdded(pair, names))
          .filter((pair) => pair !== '');
  for (const [name, value] of Object.entries(params)) if (value !== null) kept.push(`${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
  const base = url.href.slice(0, url.href.length - url.search.length);
  return kept.length === 0 ? base : `${base}?${kept.join('&')}`;
}
