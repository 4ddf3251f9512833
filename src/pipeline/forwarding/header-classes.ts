/**
 * What a request header means to Keygate, decided by its name once and remembered, so the
 * per-request header loop does one map probe per header instead of lower-casing and
 * comparing it against lists.
 *
 * Names are classified in their lower-case, dash-spelt form: CGI, WSGI and Rack backends
 * read `X_Original_URL` as `X-Original-URL` (both become HTTP_X_ORIGINAL_URL), so an
 * underscore spelling of any header that is not plain `pass` is never forwarded.
 */
export const HeaderKind = {
  /** Forwarded as sent. */
  pass: 0,
  /** Hop-by-hop (RFC 9110 §7.6.1), `expect` (Keygate does not relay 100-continue), proxy credentials. */
  hop: 1,
  /** Can carry a path, a method or a rewrite target for the backend: never forwarded. */
  rewrite: 2,
  connection: 3,
  /** The API key. */
  key: 4,
  /** `X-Keygate-*`: Keygate's identity headers; the client's never pass. */
  identity: 5,
  contentLength: 6,
  transferEncoding: 7,
  host: 8,
  contentType: 9,
  contentEncoding: 10,
  forwardedFor: 11,
  forwardedProto: 12,
  forwardedHost: 13,
  /** RFC 7239 `Forwarded`. */
  forwarded: 14,
  /** A header that names the client's address (`X-Real-IP`, `True-Client-IP`, `CF-Connecting-IP`, …). */
  clientIp: 15,
  /** Any other forwarding or proxy-trust header (`X-Forwarded-Port`, `Forwarded-For`, `X-Scheme`, `Remote-User`, `X-ARR-ClientCert`, …): only from a trusted hop. */
  forwardingOther: 16,
  requestId: 17,
  /** Conditional and range requests: not forwarded when Keygate must see the whole answer. */
  conditional: 18,
  /** `Accept-Encoding`: replaced by `identity` when Keygate must read the answer (it cannot prove a compressed one). */
  acceptEncoding: 19,
  /** `Cookie`: on a route with conditions, cookies named like a judged filter or id are removed from it (PHP's `$_REQUEST` lets a cookie override the query). */
  cookie: 20,
} as const;
export type HeaderKind = (typeof HeaderKind)[keyof typeof HeaderKind];

/**
 * Headers a `Connection` header may not name: ones the policy reads or Keygate sets. A
 * client that lists `Content-Type` there would have Keygate judge a JSON body and then
 * drop its type, and a POST without one is a form to Rack.
 */
export function isProtected(kind: HeaderKind): boolean {
  return kind >= HeaderKind.key && kind <= HeaderKind.requestId;
}

const EXACT = new Map<string, HeaderKind>([
  ['texture-api-key', HeaderKind.key],
  ['connection', HeaderKind.connection],
  ['keep-alive', HeaderKind.hop],
  ['proxy-connection', HeaderKind.hop],
  ['te', HeaderKind.hop],
  ['trailer', HeaderKind.hop],
  ['upgrade', HeaderKind.hop],
  ['proxy-authorization', HeaderKind.hop],
  ['expect', HeaderKind.hop],
  ['transfer-encoding', HeaderKind.transferEncoding],
  ['content-length', HeaderKind.contentLength],
  ['host', HeaderKind.host],
  ['content-type', HeaderKind.contentType],
  ['content-encoding', HeaderKind.contentEncoding],
  ['x-forwarded-for', HeaderKind.forwardedFor],
  ['x-forwarded-proto', HeaderKind.forwardedProto],
  ['x-forwarded-host', HeaderKind.forwardedHost],
  ['forwarded', HeaderKind.forwarded],
  ['x-request-id', HeaderKind.requestId],
  ['if-none-match', HeaderKind.conditional],
  ['if-modified-since', HeaderKind.conditional],
  ['if-match', HeaderKind.conditional],
  ['if-unmodified-since', HeaderKind.conditional],
  ['if-range', HeaderKind.conditional],
  ['range', HeaderKind.conditional],
  ['accept-encoding', HeaderKind.acceptEncoding],
  ['cookie', HeaderKind.cookie],
  // Browser-set and plain end-to-end headers whose names hold a word below.
  ['user-agent', HeaderKind.pass],
]);

/**
 * Rewrite headers are chosen by pattern, not by a list of spellings: IIS and older
 * Symfony/Zend read X-Original-URL and X-Rewrite-URL, Spring and Werkzeug's ProxyFix
 * X-Forwarded-Prefix, Envoy X-Envoy-Original-Path, Next.js X-Middleware-Rewrite and
 * X-Invoke-Path, Flask set-ups X-Script-Name, method-override middleware
 * X-HTTP-Method(-Override) and X-Method-Override. Every such name has one of these words
 * as a dash-separated part, or starts with `x-original-`, `x-rewrite-` or `x-override-`.
 */
const REWRITE_WORDS = new Set(['url', 'uri', 'path', 'method', 'prefix', 'rewrite', 'override', 'script']);
const REWRITE_PREFIXES = ['x-original-', 'x-rewrite-', 'x-override-'];
/** Last parts that name a client address: X-Real-IP, True-Client-IP, X-Azure-ClientIP, X-Remote-Addr, … */
const ADDRESS_WORDS = new Set(['ip', 'clientip', 'socketip', 'userip', 'addr']);
/**
 * Headers a backend trusts because the hop in front of it sets them: the scheme (Tornado's
 * X-Scheme, IIS/ARR's X-Arr-Ssl, Front-End-Https), the host or port (X-Host, X-Real-Port),
 * a verified client certificate (ASP.NET Core reads X-ARR-ClientCert by default;
 * X-SSL-Client-Cert, X-Client-Verify) and the authenticated user of an auth proxy
 * (Remote-User, X-WEBAUTH-USER, oauth2-proxy's X-Auth-Request-User/-Email, Kong's
 * X-Consumer-*, X-User-Id, X-MS-Client-Principal, X-Amzn-Oidc-*, X-Goog-Authenticated-User-*).
 * Chosen by pattern, as the rewrite headers are: any name with one of these words as a
 * dash-separated part, or one of these prefixes, passes only from a trusted hop
 * (`--trust-proxy`); from any other client it is a claim Keygate did not judge.
 */
const TRUST_WORDS = new Set([
  'scheme',
  'https',
  'ssl',
  'tls',
  'proto',
  'protocol',
  'port',
  'host',
  'cert',
  'certificate',
  'clientcert',
  'verify',
  'verified',
  'dn',
  'user',
  'username',
  'userid',
  'email',
  'principal',
  'identity',
  'group',
  'groups',
  'role',
  'roles',
  'consumer',
  'authenticated',
  'webauth',
  'oidc',
  'jwt',
  'userinfo',
  'credential',
]);
// Not the bare word `auth`: an application's own `X-Auth-Token` is end to end.
const TRUST_PREFIXES = ['x-auth-request-', 'x-arr-', 'x-envoy-', 'front-end-', 'x-amzn-', 'cf-access-', 'x-ms-client-', 'x-goog-', 'x-pomerium-', 'x-apigateway-', 'x-endpoint-api-'];

/** A part that names the method in one word (`X-HTTPMethod`, `X-HTTP-MethodOverride`, `X-Verb`, `X-HTTP-Verb`), as the query's override names are judged. */
function overrides(part: string): boolean {
  return part.includes('method') || part.includes('override') || part === 'verb';
}

function classify(dashed: string): HeaderKind {
  const exact = EXACT.get(dashed);
  if (exact !== undefined) return exact;
  if (dashed.startsWith('x-keygate-')) return HeaderKind.identity;
  for (const p of REWRITE_PREFIXES) if (dashed.startsWith(p)) return HeaderKind.rewrite;
  const parts = dashed.split('-');
  for (const part of parts) if (REWRITE_WORDS.has(part) || overrides(part)) return HeaderKind.rewrite;
  if (dashed.startsWith('x-forwarded') || dashed.startsWith('forwarded-')) return HeaderKind.forwardingOther;
  if (ADDRESS_WORDS.has(parts[parts.length - 1]!)) return HeaderKind.clientIp;
  // Fetch metadata (Sec-Fetch-User, Sec-CH-UA-…) is set by the browser, not by a proxy.
  if (dashed.startsWith('sec-')) return HeaderKind.pass;
  for (const p of TRUST_PREFIXES) if (dashed.startsWith(p)) return HeaderKind.forwardingOther;
  for (const part of parts) if (TRUST_WORDS.has(part)) return HeaderKind.forwardingOther;
  return HeaderKind.pass;
}

/** A header name as the header loop needs it. */
export interface HeaderClass {
  readonly kind: HeaderKind;
  /** Lower-cased, as forwarded. */
  readonly name: string;
  /** Spelt with `_`: a backend may read it as its dashed twin, so it is never forwarded unless plain `pass`. */
  readonly underscored: boolean;
  /**
   * The name as a parameter a backend might read it as: without an `x-` prefix, `-` and
   * `_` (`X-Reference-Id`, `Reference_Id` → `referenceid`), in mutate.ts's paramKey form.
   */
  readonly field: string;
}

const MAX_REMEMBERED = 4096;
const REMEMBERED = new Map<string, HeaderClass>();

/** The class of a header name as the client spelt it. Remembered per spelling; a flood of invented names only clears the table. */
export function headerClass(raw: string): HeaderClass {
  const known = REMEMBERED.get(raw);
  if (known !== undefined) return known;
  const name = raw.toLowerCase();
  const underscored = name.includes('_');
  const field = (name.startsWith('x-') || name.startsWith('x_') ? name.slice(2) : name).replace(/[-_]/g, '');
  const hc: HeaderClass = Object.freeze({ kind: classify(underscored ? name.replaceAll('_', '-') : name), name, underscored, field });
  if (REMEMBERED.size >= MAX_REMEMBERED) REMEMBERED.clear();
  REMEMBERED.set(raw, hc);
  return hc;
}

/** The class of a name listed in a `Connection` header (not remembered: such headers are rare). */
export function tokenKind(token: string): HeaderKind {
  return classify(token.replaceAll('_', '-'));
}

/**
 * What a backend's answer header means to Keygate (names as undici gives them: lower
 * case). Decided once per name and remembered, as for request headers: the answer loop
 * (../mutate.ts responseHeaders) runs on every forwarded answer.
 */
export const AnswerKind = {
  /** Relayed as sent. */
  pass: 0,
  /** Never relayed: about the backend connection (hop-by-hop), the backend's own request id, or an instruction to a shared cache Keygate does not let through. */
  drop: 1,
  /** Rewritten so that no shared cache stores the answer. */
  cacheControl: 2,
  /** `Texture-Api-Key` added. */
  vary: 3,
  /** About the backend's body bytes (`Content-Length`, `Content-Encoding`, `ETag`): dropped when Keygate sends other bytes. */
  body: 4,
} as const;
export type AnswerKind = (typeof AnswerKind)[keyof typeof AnswerKind];

export interface AnswerClass {
  readonly kind: AnswerKind;
  /**
   * Kept on an answer to a route with conditions (a scoped key's checked or proven
   * routes): the header describes the response, not the data, so it cannot carry another
   * user's id or a count of anyone's items. Everything else there (`ETag`, `Last-Modified`,
   * `Link`, `Location`, `Content-Location`, `X-Total-Count`, `Content-Range`, …) is not sent.
   */
  readonly kept: boolean;
}

/** About the backend connection or its request id; Keygate adds its own `X-Request-Id`. */
const ANSWER_DROP = ['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade', 'trailer', 'te', 'x-request-id'];
/**
 * Fields a shared cache (CDN, ingress, Varnish, nginx) obeys over or besides
 * `Cache-Control`: the targeted fields of RFC 9213 (`CDN-Cache-Control` and every
 * `<vendor>-CDN-Cache-Control`, matched by suffix), Fastly's and Varnish's surrogate
 * fields and keys, Akamai's and Cloudflare's edge instructions and tags, nginx's
 * `X-Accel-Expires` (which proxy_cache prefers to `Cache-Control`). An answer to a key
 * must not be stored by any of them, so none of these is relayed.
 */
const SHARED_CACHE = ['surrogate-control', 'surrogate-key', 'cdn-cache-control', 'edge-control', 'edge-cache-tag', 'cache-tag', 'x-accel-expires', 'xkey'];
/** The headers about the response itself, kept on every answer of a route with conditions (with `Access-Control-*`). */
export const ABOUT_RESPONSE: ReadonlySet<string> = new Set([
  'content-type',
  'cache-control',
  'expires',
  'pragma',
  'vary',
  'set-cookie',
  'content-language',
  'strict-transport-security',
  'x-content-type-options',
  'x-frame-options',
  'content-security-policy',
  'referrer-policy',
]);

function classifyAnswer(name: string): AnswerClass {
  let kind: AnswerKind = AnswerKind.pass;
  if (ANSWER_DROP.includes(name) || SHARED_CACHE.includes(name) || name.endsWith('-cdn-cache-control')) kind = AnswerKind.drop;
  else if (name === 'cache-control') kind = AnswerKind.cacheControl;
  else if (name === 'vary') kind = AnswerKind.vary;
  else if (name === 'content-length' || name === 'content-encoding' || name === 'etag') kind = AnswerKind.body;
  // A streamed answer's own framing stays with its bytes; Keygate sets the length of one it checked.
  const kept = ABOUT_RESPONSE.has(name) || name.startsWith('access-control-') || name === 'content-length' || name === 'content-encoding';
  return Object.freeze({ kind, kept });
}

const REMEMBERED_ANSWER = new Map<string, AnswerClass>();

/** The class of a backend's (lower-case) answer header name. Remembered; a flood of invented names only clears the table. */
export function answerClass(name: string): AnswerClass {
  const known = REMEMBERED_ANSWER.get(name);
  if (known !== undefined) return known;
  const c = classifyAnswer(name);
  if (REMEMBERED_ANSWER.size >= MAX_REMEMBERED) REMEMBERED_ANSWER.clear();
  REMEMBERED_ANSWER.set(name, c);
  return c;
}
