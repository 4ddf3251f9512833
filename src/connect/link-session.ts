import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The browser side of a link session. Only Keygate issues session values: each is a
 * random nonce and its HMAC under the link's own secret (`sessionKey`, kept in the link's
 * row and never sent to a browser), so every replica sharing the store checks it, and a
 * value Keygate did not issue for this link is ignored (the browser gets a fresh one). The
 * link keeps the hash of the value of the browser that first posts one of its forms; every
 * form carries a CSRF token, HMAC(sessionKey, value), which whoever knows the value still
 * cannot compute. The value is replaced when the browser comes back from the device step,
 * so a value planted in the browser beforehand is worthless from then on.
 *
 * The cookie is HttpOnly and SameSite=Lax (not Strict: the device step returns the
 * browser from the backend's site with a top-level GET, which must carry it). Under an
 * https `--public-url` it is `__Host-` (Secure, Path=/, no Domain): a sibling subdomain
 * or a plain-http page cannot set it, and a cookie of the name without the prefix is not
 * read. Over http (a localhost demo) it is the plain name with Path=/connect/.
 */
export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function cookieName(linkId: string, secure: boolean): string {
  return `${secure ? '__Host-' : ''}keygate_link_${linkId}`;
}

/** A link's secret as a MAC key; an empty or short one (a row not written by Keygate) fails closed rather than be a key anyone knows. */
function macKey(sessionKey: string): string {
  if (sessionKey.length < 43) throw new Error('a Connect link without its own secret');
  return sessionKey;
}

function tag(sessionKey: string, linkId: string, nonce: string): string {
  return createHmac('sha256', macKey(sessionKey)).update(`session:${linkId}:${nonce}`).digest('base64url');
}

/** A new session value for this link: `nonce.tag`. */
export function issueSession(sessionKey: string, linkId: string): string {
  const nonce = newSecret();
  return `${nonce}.${tag(sessionKey, linkId, nonce)}`;
}

/** Whether Keygate issued `value` for this link. */
function isIssued(value: string, sessionKey: string, linkId: string): boolean {
  const m = /^([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{43})$/.exec(value);
  return m !== null && sameSecret(m[2]!, tag(sessionKey, linkId, m[1]!));
}

/** `prefix`: the path of `--public-url`, under which the browser sees the pages (a `__Host-` cookie is always `Path=/`). */
export function sessionCookie(linkId: string, value: string, secure: boolean, maxAgeSeconds: number, prefix = ''): string {
  const path = secure ? '/' : `${prefix}/connect/`;
  return `${cookieName(linkId, secure)}=${value}; Path=${path}; Max-Age=${Math.max(1, Math.ceil(maxAgeSeconds))}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
}

/**
 * The session values of this link's cookie that Keygate issued, in the order the browser
 * sent them (a browser may send several of one name, of other paths or domains); any
 * other value is ignored.
 */
export function issuedSessions(header: string | undefined, linkId: string, sessionKey: string, secure: boolean): string[] {
  if (header === undefined) return [];
  const name = cookieName(linkId, secure) + '=';
  const out: string[] = [];
  for (const part of header.split(';')) {
    const p = part.trim();
    if (!p.startsWith(name)) continue;
    const value = p.slice(name.length);
    if (isIssued(value, sessionKey, linkId)) out.push(value);
  }
  return out;
}

export function csrfToken(sessionKey: string, session: string): string {
  return createHmac('sha256', macKey(sessionKey)).update(`csrf:${session}`).digest('base64url');
}

export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
