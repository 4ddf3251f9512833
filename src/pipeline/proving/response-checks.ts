import { isUtf8 } from 'node:buffer';
import { KeygateError } from '../../errors/keygate-error.ts';
import type { Principal } from '../../keys/principal.ts';
import type { CompiledResource, IdSource } from '../../policy/model.ts';
import { PairMemo } from '../../util/pair-memo.ts';
import type { Condition } from '../authorize.ts';
import type { BufferedResponse } from '../forward.ts';
import { ABOUT_RESPONSE } from '../forwarding/header-classes.ts';
import { fieldParts, responseHopNames } from '../mutate.ts';
import { forbidden, proveByLookup } from '../prove.ts';
import { type AttributeSource, contradicts, fieldOf, type ResourceFields, satisfies } from './attributes.ts';
import { listScan, provenClean, type ScanFields, scanFields } from './clean-scan.ts';
import { foldName } from './fold.ts';
import { singular } from './id-names.ts';
import { renderScannedList, renderTextList } from './list-render.ts';
import type { LookupContext } from './lookup-context.ts';
import { checkOffThread, OFF_THREAD_BYTES } from './off-thread-check.ts';
import { bodySize, MAX_PARTS, PartsResponse, renderScannedParts } from './parts.ts';
import { AMBIGUOUS, parseAnswer } from './strict-json.ts';

/** A checked answer as the client gets it. */
export interface CheckedResponse extends BufferedResponse {
  /** List items dropped because the key may not see them: for the metric and the access line, never sent. */
  readonly dropped?: number;
}

/** Checks a buffered backend answer; returns what the client may see, or throws. */
export type ResponseCheck = (res: BufferedResponse) => Promise<CheckedResponse> | CheckedResponse;

/** `application/json` or `application/…+json`, whatever the parameters. */
const JSON_CONTENT = /^[ \t]*application\/(?:[\w.+-]*\+)?json[ \t]*(?:;|$)/i;

/** Content-Type values judged, by value: a backend sends a few, each judged once. */
const JSON_TYPES = new Map<string, boolean>();

/**
 * A JSON media type whose charset, if it names one, is UTF-8 (case-insensitive, quoted or
 * not, named once): Keygate proves the bytes as UTF-8, and a client told `utf-16` or
 * `iso-8859-1` would decode the same bytes into another text than the one proven.
 */
function isJsonType(type: string): boolean {
  let ok = JSON_TYPES.get(type);
  if (ok === undefined) {
    ok = JSON_CONTENT.test(type) && utf8Charset(type);
    if (JSON_TYPES.size >= 256) JSON_TYPES.clear();
    JSON_TYPES.set(type, ok);
  }
  return ok;
}

function utf8Charset(type: string): boolean {
  if (!type.includes(';')) return true;
  const params = fieldParts(type, 0x3b);
  let charset: string | undefined;
  for (let i = 1; i < params.length; i++) {
    const param = params[i]!;
    const eq = param.indexOf('=');
    const name = (eq === -1 ? param : param.slice(0, eq)).trim().toLowerCase();
    // RFC 2231's extended form (`charset*=UTF-16''`) names a charset too: a client may read it.
    if (name.startsWith('charset*')) return false;
    if (name !== 'charset') continue;
    // Two charsets: which one a client reads is its own choice.
    if (charset !== undefined) return false;
    let value = eq === -1 ? '' : param.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1).replace(/\\(.)/g, '$1');
    charset = value.toLowerCase();
  }
  return charset === undefined || charset === 'utf-8';
}

function isJson(res: BufferedResponse): boolean {
  const type = res.headers['content-type'];
  if (typeof type !== 'string' || !isJsonType(type)) return false;
  // A type the backend lists in its Connection header would not reach the client, which
  // might then sniff the body as something else.
  const hop = responseHopNames(res.headers.connection);
  return hop === null || (!hop.includes('content-type') && !hop.includes('content-encoding'));
}

function isIdentity(res: BufferedResponse): boolean {
  const encoding = res.headers['content-encoding'];
  return encoding === undefined || encoding === 'identity';
}

function responseText(res: BufferedResponse): string {
  if (!isJson(res)) throw new KeygateError('UPSTREAM_BAD_RESPONSE', { detail: `checked response has content-type ${String(res.headers['content-type'])}` });
  if (!isIdentity(res)) throw new KeygateError('UPSTREAM_BAD_RESPONSE', { detail: 'checked response is encoded' });
  // Decoding would replace bad sequences, but the bytes released are the backend's own: a
  // client that decodes them differently (an overlong `"`, say) could read another structure.
  if (!isUtf8(res.body)) throw new KeygateError('UPSTREAM_BAD_RESPONSE', { detail: 'checked response is not valid UTF-8' });
  return res.body.toString('utf8');
}

/** The scanner may prove this answer clean (clean-scan.ts); anything else takes the full check, which decides. */
function scannable(res: BufferedResponse, fields: ScanFields | null): fields is ScanFields {
  return fields !== null && carriesResource(res.status) && isJson(res) && isIdentity(res);
}

/**
 * Only a 2xx answer carries the resource Keygate can check. Any other answer on a checked
 * route keeps its status but not its body: a backend that ignores the filter may put
 * everyone's data in an error body too (invariant 5). 204 and 304 have no body.
 */
function carriesResource(status: number): boolean {
  return status >= 200 && status < 300 && status !== 204;
}

/**
 * A checked answer released with the backend's own body (a single resource, a command, a
 * 204 or 304 of any checked route): of its headers only those about the response, as on
 * a list Keygate writes, on every status (invariant 10): `ETag`, `Last-Modified`, `Link`,
 * `Location`, `Content-Location` or `X-Total-Count` can name another user's object or
 * count items the key may not see (an `ETag` of the backend's unfiltered list changes when
 * another user's device does). A 204 or 304 goes out without a `Content-Length` (on a 304
 * it would be the length of the backend's list).
 */
function released(res: BufferedResponse): CheckedResponse {
  const parts = res.parts;
  if (parts !== undefined && parts.length <= MAX_PARTS) {
    let length = 0;
    for (const p of parts) length += p.length;
    return new PartsResponse(res.status, listHeaders(res.headers, length), parts, length);
  }
  const body = res.body;
  return { status: res.status, headers: listHeaders(res.headers, res.status === 204 || res.status === 304 ? undefined : body.length), body };
}

function needsCheck(res: BufferedResponse): boolean {
  if (carriesResource(res.status)) return true;
  if (res.status === 204 || res.status === 304) return false;
  throw new KeygateError('UPSTREAM_ERROR', { status: res.status, detail: `backend answered ${res.status} on a checked route` });
}

/**
 * The owner keys of a check, folded → exact spelling: every part of every checked
 * attribute's field path. The answer parser marks an object that names one of them twice
 * or in a look-alike spelling (strict-json.ts), and fieldOf reads such an object as
 * nobody's.
 */
function watchedNames(resource: ResourceFields, conditions: readonly Condition[]): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  for (const c of conditions) for (const part of resource.fields.get(c.attribute) ?? [c.attribute]) out.set(foldName(part), part);
  return out;
}

const WATCHED = new PairMemo<ResourceFields, readonly Condition[], ReadonlyMap<string, string>>(() => new WeakMap());
const ID_WATCHED = new Map<string, ReadonlyMap<string, string>>();

function idWatched(name: string): ReadonlyMap<string, string> {
  let m = ID_WATCHED.get(name);
  if (m === undefined) ID_WATCHED.set(name, (m = new Map([[foldName(name), name]])));
  return m;
}

/** Some object nested in `value` (not `value` itself) belongs to someone the key may not see, or to nobody readable. */
function foreignInside(value: unknown, resource: ResourceFields, conditions: readonly Condition[]): boolean {
  if (value === null || typeof value !== 'object') return false;
  for (const child of Array.isArray(value) ? value : Object.values(value)) {
    if (child === null || typeof child !== 'object') continue;
    if (!Array.isArray(child) && contradicts(child, resource, conditions)) return true;
    if (foreignInside(child, resource, conditions)) return true;
  }
  return false;
}

/**
 * The headers of a checked answer (every answer of a checked route, whatever its status):
 * those about the response (ABOUT_RESPONSE, `Access-Control-*`), and the body's exact
 * length when it has one (never chunked for one answer, a length for another). Keygate
 * writes a list answer itself (see checkListFully), so nothing the backend says about
 * its own body (ETag, Last-Modified, Content-Range, a total in X-Total-Count or Link)
 * may go out: it could count items the key may not see; and none may name an object
 * (`Location`, `Content-Location`, `Link`) the check did not see.
 */
function listHeaders(headers: BufferedResponse['headers'], length: number | undefined): BufferedResponse['headers'] {
  const out: Record<string, string | string[] | undefined> = {};
  for (const name in headers) if (ABOUT_RESPONSE.has(name) || name.startsWith('access-control-')) out[name] = headers[name];
  if (length !== undefined) out['content-length'] = String(length);
  return out;
}

/**
 * Lists (`{data: [...], page, perPage, totalItems, totalPages}` or a bare array): every
 * item the key may not see is dropped, even if the backend ignored the filter; so is any
 * item holding another user's object.
 *
 * No oracle (invariant 10): what the client receives must be the same whether another
 * user's items were dropped or never existed. So Keygate writes every checked list answer
 * itself (list-render.ts): the kept items as the backend's own bytes, joined by `,`, in an
 * envelope of `data`, the backend's `page` and `perPage`, and totals derived from the
 * kept items alone; the backend's other envelope fields, its totals and its headers about
 * the body are never sent.
 */
export function listCheck(resource: CompiledResource, conditions: readonly Condition[]): ResponseCheck {
  return LIST_CHECKS.get(resource, conditions, makeListCheck);
}

function makeListCheck(resource: CompiledResource, conditions: readonly Condition[]): ResponseCheck {
  const fields = scanFields(resource, conditions);
  return (res) => {
    if (scannable(res, fields)) {
      // An answer in a few pieces is proven and written as those pieces, never joined (proving/parts.ts).
      // Many pieces are proven as pieces too: one that is not clean goes on unjoined.
      const parts = res.parts;
      if (parts !== undefined) {
        if (provenClean(parts, fields, 'list', listScan)) {
          const out = parts.length <= MAX_PARTS ? renderScannedParts(parts, bodySize(res), listScan) : null;
          if (out !== null) {
            let size = 0;
            for (const p of out) size += p.length;
            return new PartsResponse(res.status, listHeaders(res.headers, size), out, size, 0);
          }
          const body = renderScannedList(res.body, listScan);
          return { status: res.status, headers: listHeaders(res.headers, body.length), body, dropped: 0 };
        }
      } else if (provenClean(res.body, fields, 'list', listScan)) {
        const body = renderScannedList(res.body, listScan);
        return { status: res.status, headers: listHeaders(res.headers, body.length), body, dropped: 0 };
      }
    }
    // A large answer the scan could not prove (foreign items to drop, say) is checked off the event loop.
    return bodySize(res) >= OFF_THREAD_BYTES && needsCheck(res) ? checkOffThread(res, resource, conditions, null) : checkListFully(res, resource, conditions);
  };
}

/**
 * A check depends only on the resource and the conditions, both immutable (../authorize.ts
 * hands out one frozen condition list per key and role), so a warm request reuses the
 * check, and its scan fields, instead of building them. Weak in the conditions: a
 * resource lives until the next reload, the keys' condition lists come and go.
 */
const LIST_CHECKS = new PairMemo<CompiledResource, readonly Condition[], ResponseCheck>(() => new WeakMap());
const SINGLE_CHECKS = new PairMemo<CompiledResource, readonly Condition[], ResponseCheck>(() => new WeakMap());

/** listCheck without the byte scanner: parse (keys unescaped, owner keys watched), drop what the key may not see, write the answer. */
export function checkListFully(res: BufferedResponse, resource: ResourceFields, conditions: readonly Condition[]): CheckedResponse {
  if (!needsCheck(res)) return released(res);
  const text = responseText(res);
  const { value, ranges } = parseAnswer(text, WATCHED.get(resource, conditions, watchedNames), true);
  const bare = Array.isArray(value);
  const items = bare ? value : (value as { data?: unknown } | null)?.data;
  if (!Array.isArray(items) || ranges === null) throw new KeygateError('UPSTREAM_BAD_RESPONSE', { detail: 'list response has no data array' });
  const kept: string[] = [];
  for (let i = 0; i < items.length; i++) {
    if (satisfies(items[i], resource, conditions) && !foreignInside(items[i], resource, conditions)) kept.push(text.slice(ranges[2 * i], ranges[2 * i + 1]));
  }
  const envelope = bare ? null : (value as Record<string, unknown>);
  const body = renderTextList(kept, envelope === null, envelope?.page, envelope?.perPage);
  return { status: res.status, headers: listHeaders(res.headers, body.length), body, dropped: items.length - kept.length };
}

/** A single resource whose own attributes are in the answer. */
export function responseCheck(resource: CompiledResource, conditions: readonly Condition[]): ResponseCheck {
  return SINGLE_CHECKS.get(resource, conditions, makeSingleCheck);
}

function makeSingleCheck(resource: CompiledResource, conditions: readonly Condition[]): ResponseCheck {
  const fields = scanFields(resource, conditions);
  return (res) =>
    scannable(res, fields) && provenClean(res.parts !== undefined && res.parts.length <= MAX_PARTS ? res.parts : res.body, fields, 'single')
      ? released(res)
      : checkSingleFully(res, resource, conditions);
}

/**
 * The answer of the looked-up resource's own read (`GET /v1/devices/{id}`): responseCheck,
 * and about that device alone as a proven answer is (aboutOnly: no other device named by
 * its id field, a device object, a link, a JSON:API object — a gateway device's
 * `parentDeviceId` of another user's, say). Every such naming spells the resource's
 * singular name (`device`) in some case, or hides it behind a `\u` escape: an answer
 * with neither (the usual device object) is not parsed again.
 */
export function ownReadCheck(resource: CompiledResource, conditions: readonly Condition[], idField: string, id: string): ResponseCheck {
  const single = responseCheck(resource, conditions);
  const names = namesOf(resource, idField);
  const alone = (res: BufferedResponse, out: CheckedResponse): CheckedResponse => {
    if (!carriesResource(res.status) || bodySize(res) === 0) return out;
    const text = responseText(res);
    if (!names.test(text)) return out;
    const { value } = parseAnswer(text, ownerAndFieldNames(resource, conditions, idField), false);
    if (!aboutOnly(value, resource, conditions, idField, id)) throw forbidden(`answer about ${resource.name} ${id} names another ${idField}`);
    return out;
  };
  return (res) => {
    const out = single(res);
    return out instanceof Promise ? out.then((o) => alone(res, o)) : alone(res, out);
  };
}

/** The resource's singular name or the id field in any case, or a `\u` escape (which could spell either), per resource and field. */
const NAMES = new WeakMap<ResourceFields, Map<string, RegExp>>();

function namesOf(resource: ResourceFields, idField: string): RegExp {
  let byField = NAMES.get(resource);
  if (byField === undefined) NAMES.set(resource, (byField = new Map()));
  let re = byField.get(idField);
  if (re === undefined) {
    const word = (w: string): string => w.replace(/[^0-9A-Za-z]/g, '.');
    byField.set(idField, (re = new RegExp(`${word(singular(resource.name))}|${word(idField)}|\\\\u`, 'i')));
  }
  return re;
}

/** responseCheck without the byte scanner: parse (owner keys watched), and refuse an answer the key may not see. */
export function checkSingleFully(res: BufferedResponse, resource: CompiledResource, conditions: readonly Condition[]): BufferedResponse {
  if (!needsCheck(res)) return released(res);
  const { value } = parseAnswer(responseText(res), WATCHED.get(resource, conditions, watchedNames), false);
  if (!satisfies(value, resource, conditions)) throw forbidden(`${resource.name} in response does not satisfy the key's conditions`);
  if (foreignInside(value, resource, conditions)) throw forbidden(`${resource.name} in response holds another owner's object`);
  return released(res);
}

/** The id key and the looked-up resource's owner keys, folded → exact spelling (see watchedNames). */
function idAndOwnerNames(source: IdSource, resource: CompiledResource, conditions: readonly Condition[]): ReadonlyMap<string, string> {
  const out = new Map(watchedNames(resource, conditions));
  for (const [folded, name] of idWatched(source.name)) out.set(folded, name);
  return out;
}

const ID_AND_OWNER = new PairMemo<CompiledResource, readonly Condition[], Map<string, ReadonlyMap<string, string>>>(() => new WeakMap());

/**
 * An answer naming another resource (a command's `deviceId`) that must be proven before it
 * is released. Only a 2xx answer carries that id: any other (a 404 for an unknown command,
 * an error) is refused as a foreign one is, with the same 403, because the backend's own
 * status would tell an id of another user's (403 after the lookup) from one that does not
 * exist (invariant 10). And the answer must hold no object of another owner at any depth
 * (`"device": {"referenceId": "bob"}` beside a proven `deviceId`), as a single resource's
 * answer must not (invariant 5).
 */
export function responseIdCheck(
  attributes: AttributeSource,
  resource: CompiledResource,
  source: IdSource,
  conditions: readonly Condition[],
  principal: Principal,
  requestId: string,
  context?: LookupContext,
): ResponseCheck {
  return async (res) => {
    if (!carriesResource(res.status)) throw forbidden(`backend answered ${res.status}: no ${source.name} to prove`);
    // Keys compared unescaped, and the id and the owner keys named once in one spelling: a
    // client must not be able to read another `deviceId` than the one proven, nor an owner
    // other than the one checked.
    const byName = ID_AND_OWNER.get(resource, conditions, () => new Map());
    let watched = byName.get(source.name);
    if (watched === undefined) byName.set(source.name, (watched = idAndOwnerNames(source, resource, conditions)));
    const { value } = parseAnswer(responseText(res), watched, false);
    const v = fieldOf(value, [source.name]);
    const id = typeof v === 'string' && v !== '' ? v : typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : undefined;
    if (id === undefined) throw forbidden(`response has no ${source.name} that is a string or a safe integer, named once`);
    if (contradicts(value as object, resource, conditions) || foreignInside(value, resource, conditions)) {
      throw forbidden(`response naming ${resource.name} ${id} holds another owner's object`);
    }
    // Nor may it name another of the resource at any depth (a `related` entry's `deviceId`, a
    // nested `device` object), as the answer of a route proven by its request must not.
    if (!aboutOnly(value, resource, conditions, source.name, id)) throw forbidden(`response naming ${resource.name} ${id} names another ${source.name}`);
    await proveByLookup(attributes, resource, id, conditions, principal, requestId, context);
    return released(res);
  };
}

/** The owner keys and one id field, folded → exact spelling, per resource, conditions and field name. */
const OWNER_AND_FIELD = new PairMemo<ResourceFields, readonly Condition[], Map<string, ReadonlyMap<string, string>>>(() => new WeakMap());

function ownerAndFieldNames(resource: ResourceFields, conditions: readonly Condition[], idField: string): ReadonlyMap<string, string> {
  const byName = OWNER_AND_FIELD.get(resource, conditions, () => new Map());
  let watched = byName.get(idField);
  if (watched === undefined) {
    const out = new Map(watchedNames(resource, conditions));
    for (const [folded, name] of idWatched(idField)) out.set(folded, name);
    byName.set(idField, (watched = out));
  }
  return watched;
}

function isId(v: unknown, id: string): boolean {
  return typeof v === 'string' ? v === id : typeof v === 'number' && Number.isSafeInteger(v) && String(v) === id;
}

/** A key's name as a device's field is compared: foldName, and without blanks and dots (`device id`, `device.id`). */
function looseName(key: string): string {
  const name = foldName(key);
  return /[\s.]/.test(name) ? name.replace(/[\s.]/g, '') : name;
}

/**
 * An object's own id under the names serialisers give it, folded as looseName folds them:
 * `id`, `Id` and `ID` (.NET and Go structs), `_id` (MongoDB), `uuid`, `guid`, `pk` (Django).
 */
const OWN_ID_NAMES = new Set(['id', 'uuid', 'guid', 'pk']);

/** The id itself, or an object whose id (OWN_ID_NAMES, any case, or JSON:API's `data`), if any, is it. */
function namedOnly(x: unknown, id: string): boolean {
  if (x === null) return true;
  if (typeof x !== 'object') return isId(x, id);
  if (Array.isArray(x)) return true;
  const o = x as Record<string, unknown>;
  for (const key in o) {
    const name = looseName(key);
    if (OWN_ID_NAMES.has(name) && !isId(o[key], id)) return false;
    // JSON:API's relationship: `{"data": {"id": …}}` or `{"data": [{"id": …}]}`.
    if (name === 'data' && o[key] !== null && typeof o[key] === 'object') {
      const data = o[key];
      if (!(Array.isArray(data) ? data.every((d) => namedOnly(d, id)) : namedOnly(data, id))) return false;
    }
  }
  return true;
}

/**
 * A field naming one of the resource by another spelling than `idField` names only `id`:
 * - the singular name holding an id or an object whose `id`, `uuid` or JSON:API `data` is
 *   one (`"device": "d1"`, `"device": {"id": "d1"}`, `"device": {"data": {"id": "d1"}}`);
 * - the singular name with `ids`/`uuids` holding a list of them, or a comma-separated one;
 * - the plural holding a list of them, or an object keyed by them (`"devices": {"d1": …}`);
 * - any name ending in the singular with `id` or `uuid` (`targetDeviceId`, `device id`).
 */
function namesOnly(key: string, v: unknown, one: string, id: string): boolean {
  const name = looseName(key);
  if (!name.includes(one)) return true;
  if (name === one) return namedOnly(v, id);
  if (name === one + 'ids' || name === one + 'uuids') {
    if (typeof v === 'string') return v.split(',').every((x) => x.trim() === id);
    return !Array.isArray(v) || v.every((x) => isId(x, id));
  }
  if (name === one + 's' || name === one.slice(0, -1) + 'ies') {
    if (Array.isArray(v)) return v.every((x) => namedOnly(x, id));
    if (v !== null && typeof v === 'object') return Object.keys(v).every((k) => k === id);
    return v === null || isId(v, id);
  }
  if (name.endsWith(one + 'id') || name.endsWith(one + 'uuid')) return v === null || typeof v === 'object' || isId(v, id);
  return true;
}

/** An object that says it is one of the resource (JSON:API's `included`, `{"type": "device", "id": …}`) is that one only. */
function typedOnly(value: Record<string, unknown>, one: string, id: string): boolean {
  const t = value.type;
  if (typeof t !== 'string' || !Object.hasOwn(value, 'id')) return true;
  const folded = looseName(t);
  return (folded !== one && folded !== one + 's') || isId(value.id, id);
}

/** A link to one of the resource (HAL's `"href": "/v1/devices/d1"`) points at `id` only. */
function linksOnly(text: string, many: string, id: string): boolean {
  const at = text.indexOf(`/${many}/`);
  if (at === -1) return true;
  const rest = text.slice(at + many.length + 2);
  const end = rest.search(/[/?#]/);
  const segment = end === -1 ? rest : rest.slice(0, end);
  try {
    const decoded = decodeURIComponent(segment);
    return decoded === '' || decoded === id;
  } catch {
    return false;
  }
}

/** Every object in `value`, at any depth, is of the key's own and names no other of the resource than `id` (by `idField` or namesOnly's spellings), each named once in one spelling. */
function aboutOnly(value: unknown, resource: ResourceFields, conditions: readonly Condition[], idField: string, id: string, one = foldName(singular(resource.name))): boolean {
  if (value === null || typeof value !== 'object') return true;
  if (Array.isArray(value)) {
    for (const item of value) if (!aboutOnly(item, resource, conditions, idField, id, one)) return false;
    return true;
  }
  if ((value as { [AMBIGUOUS]?: true })[AMBIGUOUS] === true || contradicts(value, resource, conditions)) return false;
  if (Object.hasOwn(value, idField) && !isId((value as Record<string, unknown>)[idField], id)) return false;
  if (!typedOnly(value as Record<string, unknown>, one, id)) return false;
  for (const key in value) {
    const v = (value as Record<string, unknown>)[key];
    if (typeof v === 'string' && !linksOnly(v, resource.name, id)) return false;
    if (!namesOnly(key, v, one, id) || !aboutOnly(v, resource, conditions, idField, id, one)) return false;
  }
  return true;
}

/**
 * The answer of a route whose request was proven by a lookup (a device's `history`, a
 * command sent to a device, a device's tags): the proof is that the request's device is
 * the key's, so a 2xx answer with a body must be about that device alone (invariant 5:
 * a backend that ignores the path's id, or mixes in other users' objects, is caught). No
 * object at any depth may carry an owner the key may not see, or name another of the
 * resource by its id field (`deviceId` of a history entry), or name either twice or in a
 * look-alike spelling; such an answer is the 403 a foreign device gets. An answer that is
 * not JSON cannot be proven and is refused. Any other status with a body is held to the
 * same (else `UPSTREAM_ERROR`, its status kept, its body withheld); 204, 304 and empty
 * bodies carry nothing and are released.
 */
export function provenAnswerCheck(resource: CompiledResource, conditions: readonly Condition[], idField: string, id: string): ResponseCheck {
  return (res) => {
    // Released with only the headers about the response, on every status (see released).
    if (bodySize(res) === 0 || res.status === 204 || res.status === 304) return released(res);
    // Any other status with a body is judged the same way: an error or a redirect may hold
    // another user's objects too. There, what fails the check keeps its status but not its
    // body (UPSTREAM_ERROR), as on the other checked routes.
    const ok = carriesResource(res.status);
    const withheld = (err: unknown): never => {
      throw ok ? err : new KeygateError('UPSTREAM_ERROR', { status: res.status, detail: `backend answered ${res.status} with a body not about ${resource.name} ${id} alone` });
    };
    // A large answer (a long history) is parsed off the event loop, as a large list is.
    if (bodySize(res) >= OFF_THREAD_BYTES) return checkOffThread(res, resource, conditions, { idField, id }).then(() => released(res), withheld);
    try {
      checkProvenFully(res, resource, conditions, idField, id);
    } catch (err) {
      withheld(err);
    }
    return released(res);
  };
}

/** provenAnswerCheck's parse and walk: throws the 403 when the answer is not about `id` alone. */
export function checkProvenFully(res: BufferedResponse, resource: ResourceFields, conditions: readonly Condition[], idField: string, id: string): void {
  const { value } = parseAnswer(responseText(res), ownerAndFieldNames(resource, conditions, idField), false);
  if (!aboutOnly(value, resource, conditions, idField, id)) throw forbidden(`answer about ${resource.name} ${id} holds another owner's object or another ${idField}`);
}
