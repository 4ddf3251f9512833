import type { IncomingMessage } from 'node:http';
import { KeygateError } from '../../errors/keygate-error.ts';
import { caseFold, foldName } from './fold.ts';
import { parseStrictJson } from './strict-json.ts';

/**
 * The media types a body the policy reads may have (compared case-insensitively):
 * `application/json`, or `application/NAME+json` (a vendor or standards-tree JSON type:
 * `vnd.texture+json`, `merge-patch+json`), with no parameter but one `charset=utf-8`.
 * NAME is letters, digits, `.` and `-`, and never names another body format: backends that
 * pick their body parser by substring (formidable's /multipart/i, /urlencoded/i,
 * /octet-stream/i) would read `application/x-www-form-urlencoded+json` as a form, and that
 * form as other fields; nor may a `.`/`-` part of NAME be `form`.
 */
const JSON_TYPE = /^application\/(?:json|([a-z0-9][a-z0-9.-]*)\+json)[ \t]*(?:;[ \t]*charset=(?:utf-8|"utf-8")[ \t]*)?$/i;
const OTHER_FORMAT = /multipart|urlencoded|octet|(?:^|[.-])form(?:$|[.-])/i;

export function isJsonMediaType(contentType: string): boolean {
  const m = JSON_TYPE.exec(contentType);
  return m !== null && (m[1] === undefined || !OTHER_FORMAT.test(m[1]));
}

/** Checks the framing headers of a body the policy must read, before a byte is read. */
export function checkJsonBodyHeaders(contentType: string | undefined, contentEncoding: string | undefined, contentLength: string | undefined, maxBytes: number): void {
  if (contentEncoding !== undefined && contentEncoding.trim().toLowerCase() !== 'identity') {
    // Compressed bodies would be judged on one decoding and run on another: refuse (invariant 4).
    throw new KeygateError('UNSUPPORTED_MEDIA_TYPE', { detail: `content-encoding ${contentEncoding}` });
  }
  if (contentType === undefined || !isJsonMediaType(contentType)) {
    throw new KeygateError('UNSUPPORTED_MEDIA_TYPE', { detail: `content-type ${contentType ?? '(none)'}` });
  }
  if (contentLength !== undefined && Number(contentLength) > maxBytes) {
    throw new KeygateError('BODY_TOO_LARGE', { detail: `content-length ${contentLength} > ${maxBytes}` });
  }
}

/**
 * Method overrides a framework reads from the body itself: Laravel and Symfony take
 * `_method` from JSON input (Rack and Express middleware from form fields), some take the
 * header names as fields. Compared case-folded with `-` and `_` alike.
 */
const OVERRIDE_FIELDS = new Set(['_method', 'x_http_method_override', 'x_http_method', 'x_method_override']);

/** What judgeBody holds a body to, beyond the method override fields every judged body is checked for. */
export interface BodyRules {
  /** Every name of the resource id the route proves (idNames, foldName form): no field may name it again. */
  readonly idKeys?: ReadonlySet<string> | undefined;
  /** The top-level field the id is proven from (`deviceId` of `body.deviceId`), the one field allowed to name it. */
  readonly provenField?: string | undefined;
  /** Filtered attributes (foldName form): a backend merging body and query would read one as a second filter. */
  readonly filterKeys?: ReadonlySet<string> | undefined;
}

/**
 * What a body the policy reads may not say besides what was judged (the parser has
 * already refused duplicate, look-alike and control-character keys at one level):
 * - no top-level field that overrides the method;
 * - no field but the proven one that names the proven id under any of its names, at the
 *   top (Laravel's `$request->id` prefers input to the route parameter) or nested at any
 *   depth (Rails' `wrap_parameters` leaves a client's own `{"command": {"deviceId": …}}`
 *   as `params[:command]`, JSON:API backends read `data.attributes.deviceId`); nested, a
 *   plain `id` is left alone, as most nested objects have ids of their own;
 * - no field, at any depth, that names a filtered attribute.
 */
export function judgeBody(json: unknown, rules: BodyRules = {}): void {
  if (json === null || typeof json !== 'object') return;
  const { idKeys, provenField, filterKeys } = rules;
  if (Array.isArray(json)) {
    if (idKeys !== undefined || filterKeys !== undefined) judgeNested(json, idKeys, filterKeys, '');
    return;
  }
  for (const key in json) {
    const folded = caseFold(key);
    if (OVERRIDE_FIELDS.has(folded.replaceAll('-', '_'))) throw new KeygateError('INVALID_JSON_KEY', { detail: `body field ${JSON.stringify(key)} overrides the method` });
    if (idKeys === undefined && filterKeys === undefined) continue;
    if (key !== provenField) judgeField(key, idKeys, filterKeys, '');
    const value = (json as Record<string, unknown>)[key];
    if (value !== null && typeof value === 'object') judgeNested(value, idKeys, filterKeys, key);
  }
}

/** Dropped from body keys before they are compared with the id's names, as PHP and qs-style parsers drop them from parameter names: `"deviceId "`, `"device.id"`, `"device[id]"`. */
const KEY_PUNCTUATION = /[ .[\]]/g;

function judgeField(key: string, idKeys: ReadonlySet<string> | undefined, filterKeys: ReadonlySet<string> | undefined, at: string): void {
  const folded = foldName(key);
  const name = folded.replace(KEY_PUNCTUATION, '');
  const where = at === '' ? key : `${at}.${key}`;
  if (idKeys?.has(name) === true && (at === '' || name !== 'id')) throw new KeygateError('RESOURCE_ID_OVERRIDE', { detail: `body field ${JSON.stringify(where)} names the proven id` });
  if (filterKeys?.has(name) === true) throw new KeygateError('INVALID_JSON_KEY', { detail: `body field ${JSON.stringify(where)} names the filtered attribute` });
}

/** Nested objects and arrays, as deep as the parser allows (64). */
function judgeNested(value: object, idKeys: ReadonlySet<string> | undefined, filterKeys: ReadonlySet<string> | undefined, at: string): void {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (item !== null && typeof item === 'object') judgeNested(item, idKeys, filterKeys, `${at}[${i}]`);
    }
    return;
  }
  for (const key in value) {
    judgeField(key, idKeys, filterKeys, at);
    const inner = (value as Record<string, unknown>)[key];
    if (inner !== null && typeof inner === 'object') judgeNested(inner, idKeys, filterKeys, `${at}.${key}`);
  }
}

/**
 * Reads the whole request body, refusing more than `maxBytes` without buffering the excess,
 * and refusing a body still incomplete after `timeoutMs` (408): a client that declares a
 * body and stalls holds its own socket, not a backend connection, and not for long.
 */
export function readBody(req: IncomingMessage, maxBytes: number, timeoutMs = Infinity): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        req.resume(); // drain and discard the rest so the 413 can be written
        reject(new KeygateError('BODY_TOO_LARGE', { detail: `body over ${maxBytes} bytes` }));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new KeygateError('INVALID_JSON', { detail: `body could not be read: ${err.message}`, cause: err }));
    };
    const onTimeout = (): void => {
      cleanup();
      reject(new KeygateError('BODY_TIMEOUT', { detail: `${size} bytes of body after ${Math.round(timeoutMs)} ms` }));
    };
    const timer = timeoutMs === Infinity ? undefined : setTimeout(onTimeout, Math.max(0, timeoutMs));
    const cleanup = (): void => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/** How much of a refused request's unread body Keygate reads and discards before closing, at most. */
const DISCARD_MAX_BYTES = 8 * 1024 * 1024;
const DISCARD_MAX_MS = 5_000;

/**
 * Whether a refusal must wait for the rest of the request body: the connection closes
 * after this response (the client sent `Connection: close`), and the client is still
 * sending a body of at most DISCARD_MAX_BYTES. Closing a socket with unread bytes makes
 * the kernel reset it, and the reset can destroy the refusal before the client reads it
 * (it sees ECONNRESET or EPIPE instead of a 4xx). On a kept-alive connection Node reads
 * and discards the rest itself, so nothing waits there.
 */
export function mustDiscardBefore(req: IncomingMessage, closing: boolean): boolean {
  if (!closing || req.complete || req.destroyed) return false;
  const length = req.headers['content-length'];
  if (length === undefined) return req.headers['transfer-encoding'] !== undefined;
  const bytes = Number(length);
  return bytes > 0 && bytes <= DISCARD_MAX_BYTES;
}

/**
 * Reads and discards the rest of the request body, then calls `then` once: at its end, or
 * after DISCARD_MAX_BYTES or DISCARD_MAX_MS, or when the client goes away.
 */
export function discardBody(req: IncomingMessage, then: () => void): void {
  let bytes = 0;
  let done = false;
  const finish = (): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    req.off('data', onData);
    req.off('end', finish);
    req.off('error', finish);
    req.off('close', finish);
    then();
  };
  const onData = (chunk: Buffer): void => {
    bytes += chunk.length;
    if (bytes > DISCARD_MAX_BYTES) finish();
  };
  const timer = setTimeout(finish, DISCARD_MAX_MS);
  req.on('data', onData);
  req.once('end', finish);
  req.once('error', finish);
  req.once('close', finish);
  req.resume();
}

/**
 * Fatal on bad UTF-8; a byte order mark is kept as a character (TextDecoder strips it by
 * default), so the parser refuses it as it refuses any other byte before the value: RFC
 * 8259 lets a parser ignore one or not, and a backend that does not (JSON.parse) would
 * fail on the body Keygate judged, or read it another way.
 */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function parseJsonBody(body: Buffer): unknown {
  let text: string;
  try {
    text = UTF8.decode(body);
  } catch {
    throw new KeygateError('INVALID_JSON', { detail: 'body is not UTF-8' });
  }
  return parseStrictJson(text);
}
