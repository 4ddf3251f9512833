import type { IncomingHttpHeaders } from 'node:http';
import { type KeygateError, sharedRefusal } from '../errors/keygate-error.ts';
import type { KeyType } from '../keys/key-record.ts';
import type { Principal } from '../keys/principal.ts';
import type { KnownOrigins } from './known-origins.ts';

/**
 * Key types that are secret (Texture's documentation: server keys are "never to be used in any context
 * that is user-facing or client-side"; EVRYTHNG operator keys and access tokens likewise).
 * Connect keys are public by design and scoped keys are made for client apps.
 */
const SECRET: ReadonlySet<KeyType> = new Set<KeyType>(['server', 'operator', 'access-token']);

const EXPOSED = sharedRefusal('KEY_EXPOSED');
const ORIGIN_REFUSED = sharedRefusal('ORIGIN_NOT_ALLOWED', 'the key does not allow this origin');

/** What a secret key seen in a browser sets off: the log line, the metric, and (when configured) its revocation. */
export type ExposureReport = (principal: Principal, keyHeader: string, signal: 'origin' | 'sec-fetch-site') => void;

/**
 * The browser checks of one keyed request, after authentication. Returns the refusal, or
 * null when the request may go on; `allowedOrigin` is then the origin its answers carry
 * CORS headers for (undefined without an Origin). A request without an Origin header from
 * a public key pays the one header read and nothing else (the bench's hot path).
 */
export class BrowserGuard {
  readonly known: KnownOrigins;
  readonly #report: ExposureReport;

  constructor(known: KnownOrigins, report: ExposureReport) {
    this.known = known;
    this.#report = report;
  }

  check(principal: Principal, headers: IncomingHttpHeaders, origin: string | undefined): KeygateError | null {
    if (SECRET.has(principal.type)) {
      // Only browsers send Sec-Fetch-* (Fetch Metadata); a browser always sends Origin on a
      // cross-origin fetch, but a page served from Keygate's own origin would not.
      const signal = origin !== undefined ? 'origin' : headers['sec-fetch-site'] !== undefined ? 'sec-fetch-site' : null;
      if (signal === null) return null;
      const key = headers['texture-api-key'];
      this.#report(principal, typeof key === 'string' ? key : '', signal);
      return EXPOSED;
    }
    if (origin === undefined) return null;
    if (!principal.allowedOrigins.includes(origin)) return ORIGIN_REFUSED;
    this.known.learn(origin);
    return null;
  }

  /**
   * Whether a refusal to a request from `origin` may be read by the page (so it can say
   * why): for a usable key, when the key allows the origin; without one (missing, unknown,
   * revoked), when some connect key does. A key's refusal is never readable by an origin
   * only another app's connect key allows: which browser may read an answer to a key is
   * that key's decision (docs/connect.md).
   */
  refusalReadable(origin: string, principal: Principal | undefined): boolean {
    return principal === undefined ? this.known.has(origin) : principal.allowedOrigins.includes(origin);
  }
}
