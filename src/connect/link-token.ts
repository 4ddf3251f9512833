import { randomBytes } from 'node:crypto';
import { holdsKey } from '../keys/key-format.ts';
import { decodeLeniently } from '../util/lenient-decode.ts';

/** A link token: 32 random bytes, base64url (43 characters). It is shown once, in the link URL; the store keeps its hash. */
export function newLinkToken(): string {
  return randomBytes(32).toString('base64url');
}

/** A run as long as a token, or longer, of its alphabet. */
const TOKEN_RUN = /[A-Za-z0-9_-]{43,}/g;
const TOKEN_RUN_ONE = /[A-Za-z0-9_-]{43}/;

/**
 * The path as an access line may show it: a link URL that reached Keygate under a spelling
 * no route matched (an ingress's prefix that was not stripped, `//connect/links/…`,
 * `/%2Fconnect/…`, `%256Cinks`, a path cut short) would otherwise put the token in the log,
 * and whoever reads the log could finish the link. Every run of the token's alphabet as
 * long as a token is masked, in the path as sent and as decoded (up to three times, so
 * double encoding does not hide one); a path without one is returned as it is. An id of
 * 43 or more such characters is masked too: logs lose it, not a link.
 */
export function maskLinkTokens(path: string): string {
  if (path.length < 43) return path;
  const text = decodeLeniently(path);
  if (!TOKEN_RUN_ONE.test(text)) return path;
  // A key is the access log's to write as {key} (redactKeys), whatever spelling it came in.
  const masked = text.replace(TOKEN_RUN, (run) => (holdsKey(run) ? run : '{token}'));
  return masked === text ? path : masked;
}
