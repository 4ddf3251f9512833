import { KeygateError } from '../errors/keygate-error.ts';
import { holdsKey, holdsKeyEncoded } from '../keys/key-format.ts';
import type { Principal } from '../keys/principal.ts';
import type { Condition } from './authorize.ts';
import { AnswerKind, answerClass, HeaderKind, headerClass, isProtected, tokenKind } from './forwarding/header-classes.ts';
import { caseFold } from './proving/fold.ts';

/**
 * Stage 3: rewrite what the backend will see.
 * Query: every client variant of a filtered attribute and of `_method` is removed, then the
 * filter is set once (invariant 3). Headers: the key, hop-by-hop, method-override and
 * rewrite headers and any client `X-Keygate-*` never pass; forwarding headers are
 * Keygate's unless the hop is trusted; identity headers are added by Keygate alone.
 */

// Query parameter names that never reach the backend (compared in normalised form).
const METHOD_OVERRIDE_PARAM = '_method';
/** Pair separators: `&`, and `;` because some backends split on it too. */
export const QUERY_SEPARATORS = /[&;]/;
const NAME_SUFFIX = /[[.]/;
/** `_method`, and what PHP registers as `_method` (`.method`: a `.` or space before the first `[` becomes `_`). */
const OVERRIDE_HINT = /[_.]method/i;
const PHP_UNDERSCORED = /[. ]/g;
const CONTROL = /[\u0000-\u001f\u007f]/;
/** Dropped from names before they are compared: `-` and `_` (Rails' snake_case), and what PHP turns into `_` in a parameter name (space, `.`, a `[`) with `]`. */
const SEPARATORS = /[-_ .[\]]/g;
const HAS_SEPARATOR = /[-_ .[\]]/;

/** `%72eferenceId`, `ReferenceID`, `referenceId[]`, `referenceId[0]`, `referenceid.x` all normalise to `referenceid`. */
export function normaliseParamName(raw: string): string {
  return cutSuffix(decodeParamName(raw));
}

function cutSuffix(name: string): string {
  const bracket = name.search(NAME_SUFFIX);
  return bracket === -1 ? name : name.slice(0, bracket);
}

/** The name as a backend decodes it, in lower case, whole (`filter[referenceid]`, `device.id`). */
function decodeParamName(raw: string): string {
  let name = raw;
  if (name.includes('+')) name = name.replaceAll('+', ' ');
  if (name.includes('%')) {
    try {
      name = decodeURIComponent(name);
    } catch {
      throw new KeygateError('INVALID_QUERY', { detail: `undecodable parameter name ${JSON.stringify(raw)}` });
    }
  }
  // A backend may stop a name at NUL or drop control characters: `referenceId%00` could
  // reach it as a second filter. Such names are refused rather than guessed at.
  if (CONTROL.test(name)) throw new KeygateError('INVALID_QUERY', { detail: `control character in parameter name ${JSON.stringify(raw)}` });
  return name.trim().toLowerCase();
}

/** The parts of a nested name (`device[id]`, `device.id`, `filters[referenceId][$eq]`), each in paramKey form. */
const NAME_PARTS = /[[\].]+/;

function namesAny(full: string, keys: ReadonlySet<string>): boolean {
  for (const part of full.split(NAME_PARTS)) if (part !== '' && keys.has(paramKey(part))) return true;
  return false;
}

/**
 * Whether a filtered attribute appears anywhere in the text (a name or a value, folded as
 * paramKey folds): `filter[referenceId]=` and `filters[referenceId][$eq]=` (Strapi,
 * JSON:API), `referenceId_in=` and `referenceId__eq=` (Django filters), `referenceId!=`,
 * `$filter=referenceId eq 'x'` (OData), `filter={"where":{"referenceId":…}}` (LoopBack):
 * each a filter some framework applies beside, or instead of, the injected one.
 */
function mentionsAny(text: string, keys: ReadonlySet<string>): boolean {
  const folded = paramKey(text.toLowerCase());
  for (const k of keys) if (folded.includes(k)) return true;
  return false;
}

function decodedValue(raw: string): string {
  const value = raw.includes('+') ? raw.replaceAll('+', ' ') : raw;
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * The form in which two parameter names are the same parameter: normalised, then without
 * `-` and `_` (a Rails app that turns camelCase into snake_case reads `reference_id` as
 * `referenceId`), and without space, `.`, `[` and `]`: PHP registers `device id`,
 * `device+id`, `device.id` and `device[id` as `device_id`, which Laravel's
 * `$request->device_id` reads before the route parameter. Names outside ASCII never get
 * here from a key that is not full access.
 */
export function paramKey(normalised: string): string {
  return HAS_SEPARATOR.test(normalised) ? normalised.replace(SEPARATORS, '') : normalised;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7e) return false;
  return true;
}

function encodeQueryValue(value: string): string {
  return encodeURIComponent(value);
}

/** What mutateQuery does besides the filter, for routes with conditions. */
export interface QueryRules {
  /** Parameters of these names (paramKey form: the names of the route's body id) are removed. */
  readonly drop?: ReadonlySet<string> | undefined;
  /** Parameters of these names (paramKey form: the names of the id proven from the path) are refused: a backend may prefer them to the path's. */
  readonly refuse?: ReadonlySet<string> | undefined;
  /**
   * Names outside ASCII are refused: Java's equalsIgnoreCase reads `referenceıd` (dotless ı)
   * as `referenceId`, an NFKC-normalising backend reads fullwidth letters as ASCII ones.
   */
  readonly asciiOnly?: boolean;
}

/**
 * Query names some backend may read as the method, dropped for every key that is not full
 * access (set with asciiOnly), as override headers are dropped by pattern: any name whose
 * paramKey form holds `method` or `override`, or is `verb`/`xverb` — Restlet's tunnel
 * `?method=`, Salesforce's `_HttpMethod`, method-override middleware configured with
 * `methodOverride`, `_verb` or `x-original-method`, and the override headers' names as
 * parameters. `_method` goes for every key.
 */
function namesMethod(folded: string): boolean {
  return folded.includes('method') || folded.includes('override') || folded === 'verb' || folded === 'xverb';
}

const NO_RULES: QueryRules = Object.freeze({});

/**
 * The most query pairs (split at `&` and `;`, empty ones not counted) a key that is not
 * full access may send (set with asciiOnly); more is 400 `TOO_MANY_PARAMETERS`. Well below the
 * 1000 at which common parsers stop reading pairs (qs, Node's querystring, PHP's
 * max_input_vars, Tomcat, Jetty), so every backend reads the whole forwarded query, the
 * injected filter (which comes first anyway) and every pair the policy judged.
 */
const MAX_JUDGED_PAIRS = 256;

/**
 * Returns the query string to forward (without `?`). Both `&` and `;` separate pairs here
 * because some backends split on either; a query that needs no change is forwarded as sent.
 */
export function mutateQuery(query: string, filter: readonly Condition[] | null, rules: QueryRules = NO_RULES): string {
  let out = query;
  if (query !== '' && (filter !== null || rules !== NO_RULES || mayHoldOverride(query) || holdsKey(query) || holdsKeyEncoded(query))) {
    const drop = filter === null ? null : attributeKeys(filter);
    const dropKeys = rules.drop;
    const refuseKeys = rules.refuse;
    const kept: string[] = [];
    let changed = false;
    let count = 0;
    for (const piece of query.split(QUERY_SEPARATORS)) {
      if (piece === '') {
        changed = true;
        continue;
      }
      if (rules.asciiOnly === true && ++count > MAX_JUDGED_PAIRS) {
        throw new KeygateError('TOO_MANY_PARAMETERS', { detail: `more than ${MAX_JUDGED_PAIRS} query parameters` });
      }
      const eq = piece.indexOf('=');
      const full = decodeParamName(eq === -1 ? piece : piece.slice(0, eq));
      const name = cutSuffix(full);
      if (rules.asciiOnly === true && !isAscii(full)) throw new KeygateError('INVALID_QUERY', { detail: `parameter name outside ASCII ${JSON.stringify(full)}` });
      const key = paramKey(name);
      // Nested names too: Rails and Laravel read `device[id]` and `device.id` as input.
      if (refuseKeys !== undefined && (refuseKeys.has(key) || namesAny(full, refuseKeys))) {
        throw new KeygateError('RESOURCE_ID_OVERRIDE', { detail: `query parameter ${JSON.stringify(full)} names the id proven from the path` });
      }
      if (
        isMethodOverride(full) ||
        (rules.asciiOnly === true && (namesMethod(key) || namesMethod(paramKey(full)))) ||
        // A key in the query (`?api_key=…`, a copy of the header's) never reaches the backend (invariant 6).
        holdsKey(decodedValue(piece)) ||
        holdsKeyEncoded(piece) ||
        (dropKeys !== undefined && (dropKeys.has(key) || namesAny(full, dropKeys))) ||
        (drop !== null && (drop.has(key) || mentionsAny(full, drop) || (eq !== -1 && mentionsAny(decodedValue(piece.slice(eq + 1)), drop))))
      ) {
        changed = true;
        continue;
      }
      kept.push(piece);
    }
    if (changed || query.includes(';')) out = kept.join('&');
  }
  if (filter === null) return out;
  // The filter goes first: parsers that keep only the first N pairs (Express's qs and
  // Node's querystring 1000, PHP's max_input_vars 1000, Tomcat's maxParameterCount) would
  // drop a filter appended after N client pairs and run the list unfiltered (invariant 9).
  const pairs = filterText(filter);
  return pairs === '' ? out : out === '' ? pairs : pairs + '&' + out;
}

/** Condition lists are frozen and shared per key and role (authorize.ts): derive from each once. */
const FILTER_TEXT = new WeakMap<readonly Condition[], string>();
const FILTER_KEYS = new WeakMap<readonly Condition[], ReadonlySet<string>>();

/** The attributes the conditions name, in paramKey form (`referenceId` → `referenceid`), once per condition list. */
export function attributeKeys(filter: readonly Condition[]): ReadonlySet<string> {
  let keys = FILTER_KEYS.get(filter);
  if (keys === undefined) {
    keys = new Set(filter.map((c) => paramKey(c.attribute.toLowerCase())));
    FILTER_KEYS.set(filter, keys);
  }
  return keys;
}

/** `attribute=v1,v2&…` for the filter conditions. */
function filterText(filter: readonly Condition[]): string {
  let text = FILTER_TEXT.get(filter);
  if (text === undefined) {
    for (const c of filter) {
      // Values are joined by commas: a value holding one (`ref-carol,ref-bob`) would widen
      // the backend's filter to two owners. Key creation refuses such values; a filter is
      // never built from one that got into the store another way.
      if (c.values.some((v) => v.includes(','))) throw new KeygateError('RESOURCE_NOT_ALLOWED', { detail: `a value of ${c.attribute} holds the filter's separator ","` });
    }
    text = filter.map((c) => encodeQueryValue(c.attribute) + '=' + c.values.map(encodeQueryValue).join(',')).join('&');
    FILTER_TEXT.set(filter, text);
  }
  return text;
}

/** What splits one cookie pair from the next: `;` (RFC 6265), and `,` and blanks for the older parsers (RFC 2109 ones such as Tomcat's legacy one, Python's SimpleCookie). */
const COOKIE_WORDS = /[\s,]+/;

/**
 * Whether a name in a Cookie header (raw, as sent) folds into a judged name, as a query
 * parameter's is folded. Node reads header bytes as latin1; a backend may read them as
 * UTF-8 (`referenceıd` sent raw), so a name outside ASCII is judged in both readings.
 */
function cookieNameJudged(raw: string, judged: ReadonlySet<string>, attributes: ReadonlySet<string> | undefined): boolean {
  if (isAscii(raw)) return cookieNameReadJudged(raw, judged, attributes);
  return cookieNameReadJudged(raw, judged, attributes) || cookieNameReadJudged(Buffer.from(raw, 'latin1').toString('utf8'), judged, attributes);
}

function cookieNameReadJudged(raw: string, judged: ReadonlySet<string>, attributes: ReadonlySet<string> | undefined): boolean {
  let full: string;
  try {
    full = decodeParamName(raw);
  } catch {
    // Undecodable or holding a control character: it cannot be read one way, so it does not pass.
    return true;
  }
  // Java's equalsIgnoreCase reads `referenceıd` (dotless ı) as `referenceId`, an NFKC backend fullwidth letters as ASCII.
  if (!isAscii(full)) full = caseFold(full);
  const key = paramKey(cutSuffix(full));
  // `_method=DELETE` as a cookie: `$_REQUEST` reads it as the override a query `_method` is.
  return judged.has(key) || namesAny(full, judged) || (attributes !== undefined && mentionsAny(full, attributes)) || namesMethod(key);
}

/**
 * A `Cookie` header's value on a route with conditions, without every cookie whose name,
 * folded as a query parameter's name is for the filter (case, percent-encoding, `[]` and
 * `.` suffixes, `-` `_` and PHP's space and `.`), is a filtered attribute or a name of the
 * judged id (`referenceId=bob`, `reference_id`, `referenceId%5B%5D`, `deviceId`, `id`), or
 * mentions a filtered attribute (`filter[referenceId]`): PHP's `$_REQUEST` (GPC order when
 * `request_order` is unset) lets a cookie override the injected filter or the proven id.
 * A word after a `,` or a blank inside one pair is judged as a name too, for parsers that
 * split there. The other cookies are kept byte for byte, joined by `; `; '' when none is left.
 */
function judgedCookies(value: string, judged: ReadonlySet<string>, attributes: ReadonlySet<string> | undefined): string {
  const pieces = value.split(';');
  let kept: string[] | null = null;
  for (let i = 0; i < pieces.length; i++) {
    const piece = pieces[i]!;
    let drop = false;
    for (const word of piece.split(COOKIE_WORDS)) {
      if (word === '') continue;
      const eq = word.indexOf('=');
      if (cookieNameJudged(eq === -1 ? word : word.slice(0, eq), judged, attributes)) {
        drop = true;
        break;
      }
    }
    if (drop) kept ??= pieces.slice(0, i);
    else if (kept !== null) kept.push(piece);
  }
  if (kept === null) return value;
  let out = '';
  for (const piece of kept) {
    const trimmed = piece.trim();
    if (trimmed !== '') out = out === '' ? trimmed : out + '; ' + trimmed;
  }
  return out;
}

/**
 * `_method` as Symfony and Laravel read it from a POST's query: PHP skips leading spaces in
 * a parameter name and registers a `.` or a space before the first `[` as `_`, so
 * `?.method=DELETE` reaches them as `_method` (`full` is decoded, trimmed, in lower case).
 */
function isMethodOverride(full: string): boolean {
  const bracket = full.indexOf('[');
  const base = bracket === -1 ? full : full.slice(0, bracket);
  return base === METHOD_OVERRIDE_PARAM || (base.length === METHOD_OVERRIDE_PARAM.length && base.replace(PHP_UNDERSCORED, '_') === METHOD_OVERRIDE_PARAM);
}

function mayHoldOverride(query: string): boolean {
  // Cheap pre-check: `_method` in any case or any percent-encoding needs the full parse.
  return query.includes('%') || query.includes('+') || OVERRIDE_HINT.test(query);
}

export interface UpstreamHeaderInput {
  readonly rawHeaders: readonly string[];
  readonly principal: Principal;
  readonly requestId: string;
  readonly remoteAddress: string | undefined;
  /** The connection comes from a trusted proxy (`--trust-proxy`): its forwarding headers and request id pass. */
  readonly trustedHop?: boolean | undefined;
  /** Keygate reads the body itself: the client's framing is not forwarded (the plan adds the exact length). */
  readonly readsBody?: boolean | undefined;
  /** Keygate checks the answer: conditional and range headers are not forwarded, so the backend sends all of it. */
  readonly checked?: boolean | undefined;
  /**
   * On a route with conditions, the names (paramKey form) of the filtered attributes and of
   * the proven id: a header named like one (`ReferenceId: bob`, `X-Device-Id`) is not
   * forwarded, for a backend that reads a filter or an id from a header too (invariant 9).
   */
  readonly judgedNames?: ReadonlySet<string> | undefined;
  /** With judgedNames: the filtered attributes alone (paramKey form, attributeKeys), which a cookie name may not mention anywhere (`filter[referenceId]`). */
  readonly judgedAttributes?: ReadonlySet<string> | undefined;
}

export interface UpstreamHeaders {
  readonly headers: string[];
  /** The client sent a body (content-length > 0 or chunked). */
  readonly hasBody: boolean;
  /** The framing headers as sent, each given at most once (else the request was refused). */
  readonly contentType: string | undefined;
  readonly contentEncoding: string | undefined;
  readonly contentLength: string | undefined;
}

function repeated(name: string): never {
  // Node keeps the first of two Content-Type headers, gunicorn and Werkzeug the last.
  throw new KeygateError('DUPLICATE_HEADER', { detail: `${name} given more than once` });
}

/**
 * The names a `Connection` header lists (RFC 9110 §7.6.1: hop-by-hop, not forwarded).
 * Naming one the policy reads or Keygate sets is refused: dropping it would forward a
 * request that means something other than what was judged.
 */
function connectionTokens(value: string, into: string[] | null): string[] | null {
  let out = into;
  for (const part of value.split(',')) {
    const token = part.trim().toLowerCase();
    if (token === '' || token === 'close' || token === 'keep-alive') continue;
    if (isProtected(tokenKind(token))) throw new KeygateError('INVALID_CONNECTION_HEADER', { detail: `Connection names ${token}` });
    (out ??= []).push(token);
  }
  return out;
}

/** An RFC 7239 node or host value, as a quoted-string (IPv6 addresses in brackets). */
function quoted(value: string, isNode: boolean): string {
  const v = isNode && value.includes(':') ? `[${value}]` : value;
  return '"' + v.replace(/["\\]/g, '\\$&') + '"';
}

/**
 * The request headers the backend receives. One pass over the client's raw headers (each
 * name classified once, see forwarding/header-classes.ts), then Keygate's own: forwarding headers
 * with what Keygate saw, the request id, the identity.
 */
export function buildUpstreamHeaders(input: UpstreamHeaderInput): UpstreamHeaders {
  const raw = input.rawHeaders;
  const trusted = input.trustedHop === true;
  const out: string[] = [];
  let hasBody = false;
  let host: string | undefined;
  let contentType: string | undefined;
  let contentEncoding: string | undefined;
  let contentLength: string | undefined;
  let xff: string | undefined;
  let proto: string | undefined;
  let forwardedHost: string | undefined;
  let forwarded: string | undefined;
  let sawForwarded = false;
  let requestId: string | undefined;
  let addressNames: string[] | null = null;
  let hopNames: string[] | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const hc = headerClass(raw[i]!);
    const value = raw[i + 1]!;
    // Underscore twins of anything but plain headers are dropped (see forwarding/header-classes.ts).
    const own = !hc.underscored;
    switch (hc.kind) {
      case HeaderKind.pass:
        // A key in another header (`Authorization: Bearer api_…`) never reaches the backend (invariant 6).
        if (!holdsKey(value) && !holdsKeyEncoded(value) && input.judgedNames?.has(hc.field) !== true) out.push(hc.name, value);
        break;
      case HeaderKind.connection:
        if (own && value !== 'keep-alive' && value !== 'close') hopNames = connectionTokens(value, hopNames);
        break;
      case HeaderKind.contentLength:
        if (!own) break;
        if (contentLength !== undefined) repeated('content-length');
        contentLength = value;
        if (value !== '0') hasBody = true;
        if (input.readsBody !== true) out.push(hc.name, value);
        break;
      case HeaderKind.transferEncoding:
        if (own) hasBody = true;
        break;
      case HeaderKind.host:
        if (!own) break;
        if (host !== undefined) repeated('host');
        host = value;
        break;
      case HeaderKind.contentType:
        if (!own) break;
        if (contentType !== undefined) repeated('content-type');
        contentType = value;
        out.push(hc.name, value);
        break;
      case HeaderKind.contentEncoding:
        if (!own) break;
        if (contentEncoding !== undefined) repeated('content-encoding');
        contentEncoding = value;
        out.push(hc.name, value);
        break;
      case HeaderKind.forwardedFor:
        if (trusted && own) xff = xff === undefined ? value : `${xff}, ${value}`;
        break;
      case HeaderKind.forwardedProto:
        if (trusted && own) proto ??= value;
        break;
      case HeaderKind.forwardedHost:
        if (trusted && own) forwardedHost ??= value;
        break;
      case HeaderKind.forwarded:
        if (!trusted) sawForwarded = true;
        else if (own) forwarded = forwarded === undefined ? value : `${forwarded}, ${value}`;
        break;
      case HeaderKind.clientIp:
        if (trusted) {
          if (own) out.push(hc.name, value);
        } else {
          const name = own ? hc.name : hc.name.replaceAll('_', '-');
          if (!(addressNames ??= []).includes(name)) addressNames.push(name);
        }
        break;
      case HeaderKind.forwardingOther:
        if (trusted && own) out.push(hc.name, value);
        break;
      case HeaderKind.requestId:
        if (trusted && own) requestId ??= value;
        break;
      case HeaderKind.conditional:
        if (own && input.checked !== true) out.push(hc.name, value);
        break;
      case HeaderKind.cookie:
        if (holdsKey(value) || holdsKeyEncoded(value)) break;
        if (input.judgedNames === undefined) out.push(hc.name, value);
        else {
          const kept = judgedCookies(value, input.judgedNames, input.judgedAttributes);
          if (kept !== '') out.push(hc.name, kept);
        }
        break;
      case HeaderKind.acceptEncoding:
        // Every browser sends gzip, and a compressing backend would answer what the check
        // must refuse: ask for the answer as it is (`identity` is added once below).
        if (own && input.checked !== true) out.push(hc.name, value);
        break;
      default:
        // hop, rewrite, key, identity: never forwarded
        break;
    }
  }
  if (hopNames !== null) {
    for (let i = out.length - 2; i >= 0; i -= 2) {
      if (hopNames.includes(out[i]!)) out.splice(i, 2);
    }
  }
  // A bodiless request keeps its `Content-Length: 0`; a body Keygate read gets its exact length from the plan.
  if (input.readsBody === true && !hasBody && contentLength !== undefined) out.push('content-length', contentLength);
  const client = input.remoteAddress ?? 'unknown';
  out.push('x-forwarded-for', xff === undefined ? client : `${xff}, ${client}`);
  out.push('x-forwarded-proto', proto ?? 'http');
  const shownHost = forwardedHost ?? host;
  if (shownHost !== undefined) out.push('x-forwarded-host', shownHost);
  if (forwarded !== undefined) out.push('forwarded', `${forwarded}, for=${quoted(client, true)}`);
  else if (sawForwarded) out.push('forwarded', `for=${quoted(client, true)}${host === undefined ? '' : `;host=${quoted(host, false)}`};proto=http`);
  if (addressNames !== null) for (const name of addressNames) out.push(name, client);
  if (input.checked === true) out.push('accept-encoding', 'identity');
  out.push('x-request-id', requestId ?? input.requestId);
  out.push('x-keygate-key-id', input.principal.id, 'x-keygate-key-type', input.principal.type);
  if (input.principal.referenceId !== null) out.push('x-keygate-reference-id', input.principal.referenceId);
  return { headers: out, hasBody, contentType, contentEncoding, contentLength };
}

/** The names a backend's `Connection` header lists (lower-cased), or null when it lists none. */
export function responseHopNames(connection: string | string[] | undefined): string[] | null {
  if (connection === undefined || connection === 'keep-alive' || connection === 'close') return null;
  let out: string[] | null = null;
  for (const value of typeof connection === 'string' ? [connection] : connection) {
    for (const part of value.split(',')) {
      const token = part.trim().toLowerCase();
      if (token !== '' && token !== 'close' && token !== 'keep-alive') (out ??= []).push(token);
    }
  }
  return out;
}

/**
 * The backend's response headers as the client gets them, in the flat `[name, value, …]`
 * form `writeHead` accepts: an array grows by pushes, where an object with names known
 * only at run time costs a new hidden class (or a dictionary) per response. Headers the
 * backend names in its `Connection` are hop-by-hop and stay behind. `added`: pairs Keygate
 * adds (the rate limiter's fields), replacing the backend's of the same names.
 *
 * Every forwarded answer answers a request made with a key, and no shared cache in front
 * of Keygate (a CDN, the ingress) may store it: clients of different scoped keys ask the
 * same URL and get different answers, and a cached one would reach a client that never
 * passed Keygate. So `Cache-Control` always says `private` (see privateCacheControl),
 * `Vary` names `Texture-Api-Key`, and fields only a shared cache reads
 * (`CDN-Cache-Control`, `Surrogate-Control`, …: forwarding/header-classes.ts) are dropped.
 * `conditioned`: the answer of a route with conditions, which keeps only the headers about
 * the response (see AnswerClass.kept).
 */
export function responseHeaders(
  headers: Record<string, string | string[] | undefined>,
  requestId: string,
  replaceLength?: number,
  added: readonly string[] | null = null,
  conditioned = false,
): string[] {
  const out: string[] = [];
  const hop = responseHopNames(headers.connection);
  let cacheControl: string | string[] | undefined;
  let vary: string | string[] | undefined;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    const c = answerClass(name);
    if (c.kind === AnswerKind.drop || (conditioned && !c.kept)) continue;
    if (replaceLength !== undefined && c.kind === AnswerKind.body) continue;
    if (hop?.includes(name) === true) continue;
    if (added !== null && namedIn(added, name)) continue;
    if (c.kind === AnswerKind.cacheControl) cacheControl = value;
    else if (c.kind === AnswerKind.vary) vary = value;
    else if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  out.push('cache-control', privateCacheControl(cacheControl), 'vary', varyOnKey(vary));
  if (replaceLength !== undefined) out.push('content-length', String(replaceLength));
  out.push('x-request-id', requestId);
  if (added !== null) for (let i = 0; i < added.length; i++) out.push(added[i]!);
  return out;
}

/**
 * Whether `name` is one of the (lower-case) names of the `[name, value, …]` pairs Keygate
 * adds to an answer (the RateLimit fields): the backend's field of that name stays behind,
 * so the client reads Keygate's alone.
 */
function namedIn(pairs: readonly string[], name: string): boolean {
  for (let i = 0; i < pairs.length; i += 2) if (pairs[i] === name) return true;
  return false;
}

/** Rewritten `Cache-Control` and `Vary` values, by the backend's: a backend sends a few values, each rewritten once. */
const PRIVATE_CACHE = new Map<string, string>();
const KEY_VARY = new Map<string, string>();
const MAX_REWRITTEN = 256;

function remembered(memo: Map<string, string>, value: string, rewrite: (v: string) => string): string {
  let out = memo.get(value);
  if (out === undefined) {
    out = rewrite(value);
    if (memo.size >= MAX_REWRITTEN) memo.clear();
    memo.set(value, out);
  }
  return out;
}

/**
 * The `Cache-Control` an answer to a key goes out with: storable by the client's own cache
 * as the backend said (`max-age`, `no-cache`, `no-store`, `must-revalidate`, … are kept),
 * never by a shared one. `public`, `s-maxage` and `proxy-revalidate` (a shared cache's
 * directives) are removed, a qualified `private="…"` (which leaves the rest of the answer
 * storable) becomes plain `private`, and `private` is added unless the answer says
 * `no-store` (no cache stores it; with `must-understand` a cache may ignore `no-store`,
 * so `private` is added there too). No `Cache-Control` at all becomes `private`: a
 * shared cache may otherwise store a 200 heuristically, and it cannot tell that
 * `Texture-Api-Key` authenticates the request as it can for `Authorization`.
 */
function privateCacheControl(value: string | string[] | undefined): string {
  if (value === undefined) return 'private';
  if (typeof value === 'string') return remembered(PRIVATE_CACHE, value, rewriteCacheControl);
  return rewriteCacheControl(value.join(', '));
}

function rewriteCacheControl(value: string): string {
  const kept: string[] = [];
  let changed = false;
  let isPrivate = false;
  let noStore = false;
  let mustUnderstand = false;
  for (const directive of fieldParts(value, 0x2c)) {
    const eq = directive.indexOf('=');
    const name = (eq === -1 ? directive : directive.slice(0, eq)).trim().toLowerCase();
    if (name === '' || name === 'public' || name === 's-maxage' || name === 'proxy-revalidate') {
      changed = true;
      continue;
    }
    if (name === 'private') {
      if (eq !== -1 || isPrivate) changed = true;
      if (!isPrivate) kept.push('private');
      isPrivate = true;
      continue;
    }
    if (name === 'no-store') noStore = true;
    else if (name === 'must-understand') mustUnderstand = true;
    kept.push(directive.trim());
  }
  if (!isPrivate && (!noStore || mustUnderstand)) {
    kept.unshift('private');
    changed = true;
  }
  return changed ? kept.join(', ') : value;
}

/**
 * A header value split at `separator` (a char code: `,` between `Cache-Control`
 * directives, `;` between media-type parameters) outside quoted strings
 * (`no-cache="Set-Cookie, Link"`).
 */
export function fieldParts(value: string, separator: number): string[] {
  const out: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (quoted) {
      if (c === 0x5c) i++;
      else if (c === 0x22) quoted = false;
    } else if (c === 0x22) quoted = true;
    else if (c === separator) {
      out.push(value.slice(start, i));
      start = i + 1;
    }
  }
  out.push(value.slice(start));
  return out;
}

/** `Vary` with `Texture-Api-Key` among its fields, once; `Vary: *` (never reused by a cache) stays as it is. */
function varyOnKey(value: string | string[] | undefined): string {
  if (value === undefined) return 'Texture-Api-Key';
  if (typeof value === 'string') return remembered(KEY_VARY, value, withKeyField);
  return withKeyField(value.join(', '));
}

function withKeyField(value: string): string {
  let empty = true;
  for (const part of value.split(',')) {
    const field = part.trim().toLowerCase();
    if (field === '*' || field === 'texture-api-key') return value;
    if (field !== '') empty = false;
  }
  return empty ? 'Texture-Api-Key' : `${value}, Texture-Api-Key`;
}
