import { KeygateError } from '../errors/keygate-error.ts';
import type { Principal } from '../keys/principal.ts';
import type { Condition } from './authorize.ts';

/**
 * Stage 3: rewrite what the backend will see.
 * Query: every client variant of a filtered attribute and of `_method` is removed, then the
 * filter is set once (invariant 3). Headers: the key, hop-by-hop and method-override headers
 * and any client `X-Keygate-*` never pass; identity headers are added by Keygate alone.
 */

// Query parameter names that never reach the backend (compared in normalised form).
const METHOD_OVERRIDE_PARAM = '_method';
/** Pair separators: `&`, and `;` because some backends split on it too. */
export const QUERY_SEPARATORS = /[&;]/;
const NAME_SUFFIX = /[[.]/;
const OVERRIDE_HINT = /_method/i;
const CONTROL = /[\u0000-\u001f\u007f]/;

/** `%72eferenceId`, `ReferenceID`, `referenceId[]`, `referenceId[0]`, `referenceid.x` all normalise to `referenceid`. */
export function normaliseParamName(raw: string): string {
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
  name = name.trim().toLowerCase();
  const bracket = name.search(NAME_SUFFIX);
  return bracket === -1 ? name : name.slice(0, bracket);
}

function encodeQueryValue(value: string): string {
  return encodeURIComponent(value);
}

/**
 * Returns the query string to forward (without `?`). Both `&` and `;` separate pairs here
 * because some backends split on either; a query that needs no change is forwarded as sent.
 */
export function mutateQuery(query: string, filter: readonly Condition[] | null, alsoDrop?: string): string {
  let out = query;
  if (query !== '' && (filter !== null || alsoDrop !== undefined || mayHoldOverride(query))) {
    const drop = filter === null && alsoDrop === undefined ? null : new Set(filter?.map((c) => c.attribute.toLowerCase()));
    if (alsoDrop !== undefined) drop!.add(alsoDrop.toLowerCase());
    const kept: string[] = [];
    let changed = false;
    for (const piece of query.split(QUERY_SEPARATORS)) {
      if (piece === '') {
        changed = true;
        continue;
      }
      const eq = piece.indexOf('=');
      const name = normaliseParamName(eq === -1 ? piece : piece.slice(0, eq));
      if (name === METHOD_OVERRIDE_PARAM || drop?.has(name) === true) {
        changed = true;
        continue;
      }
      kept.push(piece);
    }
    if (changed || query.includes(';')) out = kept.join('&');
  }
  if (filter === null) return out;
  const pairs = filterText(filter);
  return pairs === '' ? out : out === '' ? pairs : out + '&' + pairs;
}

/** Condition lists are frozen and shared per key and role (authorize.ts): encode each once. */
const FILTER_TEXT = new WeakMap<readonly Condition[], string>();

/** `attribute=v1,v2&…` for the filter conditions. */
function filterText(filter: readonly Condition[]): string {
  let text = FILTER_TEXT.get(filter);
  if (text === undefined) {
    text = filter.map((c) => encodeQueryValue(c.attribute) + '=' + c.values.map(encodeQueryValue).join(',')).join('&');
    FILTER_TEXT.set(filter, text);
  }
  return text;
}

function mayHoldOverride(query: string): boolean {
  // Cheap pre-check: `_method` in any case or any percent-encoding needs the full parse.
  return query.includes('%') || query.includes('+') || OVERRIDE_HINT.test(query);
}

// Headers the backend never receives from the client. Hop-by-hop per RFC 9110 §7.6.1,
// `host` (undici sets the upstream's), `expect` (Keygate does not relay 100-continue).
const DROP = new Set([
  'texture-api-key',
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
  'host',
  'expect',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  'x-request-id',
  'x-forwarded-host',
  'x-forwarded-proto',
]);

/** Backends behind CGI/WSGI read `X_Keygate_Reference_Id` as `X-Keygate-Reference-Id`: compare both spellings. */
function isDropped(name: string): boolean {
  if (DROP.has(name) || name.startsWith('x-keygate-')) return true;
  if (!name.includes('_')) return false;
  const dashed = name.replaceAll('_', '-');
  return DROP.has(dashed) || dashed.startsWith('x-keygate-');
}

export interface UpstreamHeaderInput {
  readonly rawHeaders: readonly string[];
  readonly principal: Principal;
  readonly requestId: string;
  readonly remoteAddress: string | undefined;
  /** Set when Keygate forwards a body it has read: its exact length replaces the client's framing. */
  readonly bodyLength?: number;
}

export interface UpstreamHeaders {
  readonly headers: string[];
  /** The client sent a body (content-length > 0 or chunked). */
  readonly hasBody: boolean;
}

export function buildUpstreamHeaders(input: UpstreamHeaderInput): UpstreamHeaders {
  const raw = input.rawHeaders;
  const out: string[] = [];
  let hasBody = false;
  let host: string | undefined;
  let xff: string | undefined;
  let connectionTokens: string[] | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    if (name === 'connection' && value !== 'keep-alive' && value !== 'close') {
      connectionTokens = value.toLowerCase().split(',').map((t) => t.trim());
    }
    if (name === 'transfer-encoding') hasBody = true;
    if (name === 'host') host = value;
    if (isDropped(name)) continue;
    if (name === 'content-length') {
      if (value !== '0') hasBody = true;
      if (input.bodyLength !== undefined) continue;
    }
    if (name === 'x-forwarded-for') {
      xff = xff === undefined ? value : `${xff}, ${value}`;
      continue;
    }
    out.push(name, value);
  }
  if (connectionTokens !== null) {
    // Headers named in Connection are hop-by-hop too (RFC 9110 §7.6.1).
    for (let i = out.length - 2; i >= 0; i -= 2) {
      if (connectionTokens.includes(out[i]!)) out.splice(i, 2);
    }
  }
  if (input.bodyLength !== undefined) out.push('content-length', String(input.bodyLength));
  const client = input.remoteAddress ?? 'unknown';
  out.push('x-forwarded-for', xff === undefined ? client : `${xff}, ${client}`);
  out.push('x-forwarded-proto', 'http');
  if (host !== undefined) out.push('x-forwarded-host', host);
  out.push('x-request-id', input.requestId);
  out.push('x-keygate-key-id', input.principal.id, 'x-keygate-key-type', input.principal.type);
  if (input.principal.referenceId !== null) out.push('x-keygate-reference-id', input.principal.referenceId);
  return { headers: out, hasBody };
}

// Response headers that describe the upstream connection, not the resource.
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade', 'trailer', 'te']);

/**
 * The backend's response headers as the client gets them, in the flat `[name, value, …]`
 * form `writeHead` accepts: an array grows by pushes, where an object with names known
 * only at run time costs a new hidden class (or a dictionary) per response.
 */
export function responseHeaders(
  headers: Record<string, string | string[] | undefined>,
  requestId: string,
  replaceLength?: number,
): string[] {
  const out: string[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || DROP_RESPONSE.has(name) || name === 'x-request-id') continue;
    if (replaceLength !== undefined && (name === 'content-length' || name === 'content-encoding' || name === 'etag')) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  if (replaceLength !== undefined) out.push('content-length', String(replaceLength));
  out.push('x-request-id', requestId);
  return out;
}
