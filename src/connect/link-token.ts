import { randomBytes } from 'node:crypto';

/** A link token: 32 random bytes, base64url (43 characters). It is shown once, in the link URL; the store keeps its hash. */
export function newLinkToken(): string {
  return randomBytes(32).toString('base64url');
}

/** A run as long as a token, or longer, of its alphabet. */
const TOKEN_RUN = /[A-Za-z0-9_-]{43,}/g;
const LINKS = /links/i;
/** `/links/` and a token: no shorter path can hold one. */
const SHORTEST = '/links/'.length + 43;

/**
 * The path as an access line may show it: a link URL that reached Keygate under a spelling
 * no route matched (an ingress's prefix that was not stripped, `//connect/links/…`,
 * `/%2Fconnect/…`) would otherwise put the token in the log, and whoever reads the log
 * could finish the link. Paths with a `links` segment, decoded, have every run of the
 * token's alphabet as long as a token masked; other paths are returned as they are.
 */
export function maskLinkTokens(path: string): string {
  if (path.length < SHORTEST) return path;
  let text = path;
  if (text.includes('%')) {
    try {
      text = decodeURIComponent(text);
    } catch {
      // Undecodable: a token in it is still a plain run.
    }
  }
  if (!LINKS.test(text)) return path;
  TOKEN_RUN.lastIndex = 0;
  return TOKEN_RUN.test(text) ? text.replace(TOKEN_RUN, '{token}') : path;
}
