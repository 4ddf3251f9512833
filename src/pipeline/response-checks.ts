import { isUtf8 } from 'node:buffer';
import { KeygateError } from '../errors/keygate-error.ts';
import type { Principal } from '../keys/principal.ts';
import type { CompiledResource, IdSource } from '../policy/model.ts';
import { contradicts, satisfies, type AttributeSource } from './attributes.ts';
import type { Condition } from './authorize.ts';
import type { BufferedResponse } from './forward.ts';
import { forbidden, proveByLookup } from './prove.ts';
import { parseUpstreamStrict } from './strict-json.ts';
import { provenClean, scanFields, type ScanShape } from './clean-scan.ts';
import { PairMemo } from './pair-memo.ts';

/** Checks a buffered backend answer; returns what the client may see, or throws. */
export type ResponseCheck = (res: BufferedResponse) => Promise<BufferedResponse> | BufferedResponse;

const JSON_CONTENT = /json/i;

function isJson(res: BufferedResponse): boolean {
  const type = res.headers['content-type'];
  return typeof type === 'string' && JSON_CONTENT.test(type);
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

/**
 * A 2xx JSON answer whose bytes `provenClean` proves clean is released as it came, with
 * no parse (see clean-scan.ts). Everything else — other statuses, other types, answers
 * the scanner cannot prove — takes the full check, which decides.
 */
function provenCleanAnswer(res: BufferedResponse, fields: readonly string[] | null, conditions: readonly Condition[], shape: ScanShape): boolean {
  return fields !== null && carriesResource(res.status) && isJson(res) && isIdentity(res) && provenClean(res.body, fields, conditions, shape);
}

function parseFast(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new KeygateError('UPSTREAM_BAD_RESPONSE', { detail: 'checked response is not JSON' });
  }
}

/** Slow path: duplicate keys are refused (JSON.parse keeps the last, a client may keep the first). */
const parseStrict = (text: string): unknown => parseUpstreamStrict(text, 'checked response');

/**
 * Only a 2xx answer carries the resource Keygate can check. Any other answer on a checked
 * route keeps its status but not its body: a backend that ignores the filter may put
 * everyone's data in an error body too (invariant 5). 204 and 304 have no body.
 */
function carriesResource(status: number): boolean {
  return status >= 200 && status < 300 && status !== 204;
}

function needsCheck(res: BufferedResponse): boolean {
  if (carriesResource(res.status)) return true;
  if (res.status === 204 || res.status === 304) return false;
  throw new KeygateError('UPSTREAM_ERROR', { status: res.status, detail: `backend answered ${res.status} on a checked route` });
}

function occurrences(text: string, needle: string): number {
  let n = 0;
  for (let i = text.indexOf(needle); i !== -1; i = text.indexOf(needle, i + needle.length)) n++;
  return n;
}

/**
 * The fast path's premise: the raw text names each checked attribute exactly once per
 * checked object. Then JSON.parse's reading is the only reading (no duplicate keys to
 * disagree about) and no other object in the answer carries an owner. Anything else —
 * a duplicated key, a nested object of another user, an attribute name inside a string —
 * takes the slow path: strict parse and a deep look.
 */
function plain(text: string, resource: CompiledResource, conditions: readonly Condition[], objects: number): boolean {
  for (const c of conditions) {
    const path = resource.fields.get(c.attribute) ?? [c.attribute];
    if (occurrences(text, `"${path[path.length - 1]}"`) !== objects) return false;
  }
  return true;
}

/** Some object nested in `value` (not `value` itself) belongs to someone the key may not see. */
function foreignInside(value: unknown, resource: CompiledResource, conditions: readonly Condition[]): boolean {
  if (value === null || typeof value !== 'object') return false;
  for (const child of Array.isArray(value) ? value : Object.values(value)) {
    if (child === null || typeof child !== 'object') continue;
    if (!Array.isArray(child) && contradicts(child, resource, conditions)) return true;
    if (foreignInside(child, resource, conditions)) return true;
  }
  return false;
}

function reserialised(res: BufferedResponse, value: unknown, extraHeaders: Record<string, string> = {}): BufferedResponse {
  return { status: res.status, headers: { ...res.headers, ...extraHeaders }, body: Buffer.from(JSON.stringify(value)) };
}

/**
 * Lists (`{data: [...], page, perPage, totalItems, totalPages}` or a bare array): every
 * item the key may not see is dropped, even if the backend ignored the filter; so is any
 * item holding another user's object, and any non-scalar envelope field besides `data`
 * (it is not part of the list contract and nothing in it was checked).
 */
export function listCheck(resource: CompiledResource, conditions: readonly Condition[]): ResponseCheck {
  return LIST_CHECKS.get(resource, conditions, makeListCheck);
}

function makeListCheck(resource: CompiledResource, conditions: readonly Condition[]): ResponseCheck {
  const fields = scanFields(resource, conditions);
  return (res) => (provenCleanAnswer(res, fields, conditions, 'list') ? res : checkListFully(res, resource, conditions));
}

/**
 * A check depends only on the resource and the conditions, both immutable (authorize.ts
 * hands out one frozen condition list per key and role), so a warm request reuses the
 * check, and its scan fields, instead of building them. Weak in the conditions: a
 * resource lives until the next reload, the keys' condition lists come and go.
 */
const LIST_CHECKS = new PairMemo<CompiledResource, readonly Condition[], ResponseCheck>(() => new WeakMap());
const SINGLE_CHECKS = new PairMemo<CompiledResource, readonly Condition[], ResponseCheck>(() => new WeakMap());

/** listCheck without the byte scanner: parse, and filter what the key may not see. */
export function checkListFully(res: BufferedResponse, resource: CompiledResource, conditions: readonly Condition[]): BufferedResponse {
  if (!needsCheck(res)) return res;
  const text = responseText(res);
  let body = parseFast(text);
  let items = itemsOf(body);
  const slow = !plain(text, resource, conditions, items.length);
  if (slow) items = itemsOf(body = parseStrict(text));
  let kept: unknown[] | null = null;
  for (let i = 0; i < items.length; i++) {
    const ok = satisfies(items[i], resource, conditions) && !(slow && foreignInside(items[i], resource, conditions));
    if (!ok && kept === null) kept = items.slice(0, i);
    else if (ok && kept !== null) kept.push(items[i]);
  }
  if (Array.isArray(body)) return kept === null ? res : reserialised(res, kept, { 'x-keygate-filtered': String(items.length - kept.length) });
  const page = scalarEnvelope(body as Record<string, unknown>);
  // The usual case: the backend's bytes go out untouched.
  if (kept === null) return page === null ? res : reserialised(res, page);
  const out = page ?? { ...(body as Record<string, unknown>) };
  out.data = kept;
  // The backend's counts included other users' items; they would tell how many there are.
  if ('totalItems' in out) out.totalItems = kept.length;
  if ('totalPages' in out) out.totalPages = 1;
  return reserialised(res, out, { 'x-keygate-filtered': String(items.length - kept.length) });
}

/** The envelope without its non-scalar fields besides `data`, or null when it has none. */
function scalarEnvelope(envelope: Record<string, unknown>): Record<string, unknown> | null {
  let page: Record<string, unknown> | null = null;
  for (const k in envelope) {
    const v = envelope[k];
    if (k === 'data' || v === null || typeof v !== 'object') continue;
    page ??= { ...envelope };
    delete page[k];
  }
  return page;
}

function itemsOf(body: unknown): unknown[] {
  const items = Array.isArray(body) ? body : (body as { data?: unknown } | null)?.data;
  if (!Array.isArray(items)) throw new KeygateError('UPSTREAM_BAD_RESPONSE', { detail: 'list response has no data array' });
  return items;
}

/** A single resource whose own attributes are in the answer. */
export function responseCheck(resource: CompiledResource, conditions: readonly Condition[]): ResponseCheck {
  return SINGLE_CHECKS.get(resource, conditions, makeSingleCheck);
}

function makeSingleCheck(resource: CompiledResource, conditions: readonly Condition[]): ResponseCheck {
  const fields = scanFields(resource, conditions);
  return (res) => (provenCleanAnswer(res, fields, conditions, 'single') ? res : checkSingleFully(res, resource, conditions));
}

/** responseCheck without the byte scanner: parse, and refuse an answer the key may not see. */
export function checkSingleFully(res: BufferedResponse, resource: CompiledResource, conditions: readonly Condition[]): BufferedResponse {
  if (!needsCheck(res)) return res;
  const text = responseText(res);
  const slow = !plain(text, resource, conditions, 1);
  const value = slow ? parseStrict(text) : parseFast(text);
  if (!satisfies(value, resource, conditions)) throw forbidden(`${resource.name} in response does not satisfy the key's conditions`);
  if (slow && foreignInside(value, resource, conditions)) throw forbidden(`${resource.name} in response holds another owner's object`);
  return res;
}

/** An answer naming another resource (a command's `deviceId`) that must be proven before it is released. */
export function responseIdCheck(attributes: AttributeSource, resource: CompiledResource, source: IdSource, conditions: readonly Condition[], principal: Principal, requestId: string): ResponseCheck {
  return async (res) => {
    if (!needsCheck(res)) return res;
    const text = responseText(res);
    // Strict when the name occurs more than once: a duplicated key must not be read last-wins.
    const value = occurrences(text, `"${source.name}"`) === 1 ? parseFast(text) : parseStrict(text);
    const v = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[source.name] : undefined;
    if (typeof v !== 'string' && typeof v !== 'number') throw forbidden(`response has no ${source.name}`);
    await proveByLookup(attributes, resource, String(v), conditions, principal, requestId);
    return res;
  };
}
