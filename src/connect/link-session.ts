import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The browser side of a link session. The first browser that opens a link gets a random
 * session secret in a cookie (HttpOnly, SameSite=Lax, path /connect/), and the link keeps
 * its hash: a link URL that leaks after that is of no use in another browser. Every form
 * carries a CSRF token derived from that secret (HMAC), which a page elsewhere can neither
 * read nor compute, and which Keygate checks against the cookie (signed double submit).
 * SameSite=Lax, not Strict: the device step returns the browser from the backend's site
 * with a top-level GET, which must carry the cookie.
 */
export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function cookieName(linkId: string): string {
  return `keygate_link_${linkId}`;
}

export function sessionCookie(linkId: string, secret: string, secure: boolean, maxAgeSeconds: number): string {
  return `${cookieName(linkId)}=${secret}; Path=/connect/; Max-Age=${Math.max(1, Math.ceil(maxAgeSeconds))}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
}

/** The session secret the request's cookies hold for this link, if any (the last one wins, as browsers order them). */
export function sessionFromCookies(header: string | undefined, linkId: string): string | undefined {
  if (header === undefined) return undefined;
  const name = cookieName(linkId) + '=';
  let found: string | undefined;
  for (const part of header.split(';')) {
    const p = part.trim();
    if (p.startsWith(name)) found = p.slice(name.length);
  }
  return found;
}

export function csrfToken(secret: string, linkId: string): string {
  return createHmac('sha256', secret).update(`csrf:${linkId}`).digest('base64url');
}

export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
