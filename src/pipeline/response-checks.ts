import { KeygateError } from '../errors/keygate-error.ts';
import type { Principal } from '../keys/principal.ts';
import type { CompiledResource, IdSource } from '../policy/model.ts';
import { satisfies, type AttributeSource } from './attributes.ts';
import type { Condition } from './authorize.ts';
import type { BufferedResponse } from './forward.ts';
import { forbidden, proveByLookup } from './prove.ts';

/** Checks a buffered backend answer; returns what the client may see, or throws. */
export type ResponseCheck = (res: BufferedResponse) => Promise<BufferedResponse> | BufferedResponse;

const JSON_CONTENT = /json/i;

function parseResponseJson(res: BufferedResponse): { value: unknown; text: string } {
  const type = res.headers['content-type'];
  if (typeof type !== 'string' || !JSON_CONTENT.test(type)) throw new KeygateError('UPSTREAM_BAD_RESPONSE', { detail: `checked response has content-type ${String(type)}` });
  if (res.headers['content-encoding'] !== undefined && res.headers['content-encoding'] !== 'identity') {
    throw new KeygateError('UPSTREAM_BAD_RESPONSE', { detail: 'checked response is encoded' });
  }
  const text = res.body.toString('utf8');
  try {
    return { value: JSON.parse(text), text };
  } catch {
    throw new KeygateError('UPSTREAM_BAD_RESPONSE', { detail: 'checked response is not JSON' });
  }
}

/**
 * Only a 2xx answer carries the resource Keygate can check. Any other answer on a checked
 * route keeps its status but not its body: a backend that ignores the filter may put
 * everyone's data in an error body too (invariant 5). 204 and 304 have no body.
 */
function needsCheck(res: BufferedResponse): boolean {
  if (res.status >= 200 && res.status < 300 && res.status !== 204) return true;
  if (res.status === 204 || res.status === 304) return false;
  throw new KeygateError('UPSTREAM_ERROR', { status: res.status, detail: `backend answered ${res.status} on a checked route` });
}

function occurrences(text: string, needle: string): number {
  let n = 0;
  for (let i = text.indexOf(needle); i !== -1; i = text.indexOf(needle, i + needle.length)) n++;
  return n;
}

/**
 * JSON.parse keeps the last of duplicate keys, a client's parser may keep the first. When
 * the raw text names a checked attribute more often than there are objects checked, the
 * client gets Keygate's serialisation of what it checked instead of the backend's bytes.
 */
function ambiguous(text: string, resource: CompiledResource, conditions: readonly Condition[], objects: number): boolean {
  for (const c of conditions) {
    const path = resource.fields.get(c.attribute) ?? [c.attribute];
    if (occurrences(text, `"${path[path.length - 1]}"`) !== objects) return true;
  }
  return false;
}

function reserialised(res: BufferedResponse, value: unknown, extraHeaders: Record<string, string> = {}): BufferedResponse {
  return { status: res.status, headers: { ...res.headers, ...extraHeaders }, body: Buffer.from(JSON.stringify(value)) };
}

/** Lists (`{data: [...]}` or a bare array): drop every item the key may not see, even if the backend ignored the filter. */
export function listCheck(resource: CompiledResource, conditions: readonly Condition[]): ResponseCheck {
  return (res) => {
    if (!needsCheck(res)) return res;
    const { value: body, text } = parseResponseJson(res);
    const items = Array.isArray(body) ? body : (body as { data?: unknown } | null)?.data;
    if (!Array.isArray(items)) throw new KeygateError('UPSTREAM_BAD_RESPONSE', { detail: 'list response has no data array' });
    let kept: unknown[] | null = null;
    for (let i = 0; i < items.length; i++) {
      const ok = satisfies(items[i], resource, conditions);
      if (!ok && kept === null) kept = items.slice(0, i);
      else if (ok && kept !== null) kept.push(items[i]);
    }
    if (kept === null) {
      // The usual case: the backend's bytes go out untouched.
      return ambiguous(text, resource, conditions, items.length) ? reserialised(res, body) : res;
    }
    const dropped = String(items.length - kept.length);
    if (Array.isArray(body)) return reserialised(res, kept, { 'x-keygate-filtered': dropped });
    // The backend's counts included other users' items; they would tell how many there are.
    const page = { ...(body as Record<string, unknown>), data: kept };
    if ('totalItems' in page) page.totalItems = kept.length;
    if ('totalPages' in page) page.totalPages = 1;
    return reserialised(res, page, { 'x-keygate-filtered': dropped });
  };
}

/** A single resource whose own attributes are in the answer. */
export function responseCheck(resource: CompiledResource, conditions: readonly Condition[]): ResponseCheck {
  return (res) => {
    if (!needsCheck(res)) return res;
    const { value, text } = parseResponseJson(res);
    if (!satisfies(value, resource, conditions)) throw forbidden(`${resource.name} in response does not satisfy the key's conditions`);
    return ambiguous(text, resource, conditions, 1) ? reserialised(res, value) : res;
  };
}

/** An answer naming another resource (a command's `deviceId`) that must be proven before it is released. */
export function responseIdCheck(attributes: AttributeSource, resource: CompiledResource, source: IdSource, conditions: readonly Condition[], principal: Principal, requestId: string): ResponseCheck {
  return async (res) => {
    if (!needsCheck(res)) return res;
    const { value, text } = parseResponseJson(res);
    const v = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[source.name] : undefined;
    if (typeof v !== 'string' && typeof v !== 'number') throw forbidden(`response has no ${source.name}`);
    if (occurrences(text, `"${source.name}"`) !== 1) throw forbidden(`response names ${source.name} more than once`);
    await proveByLookup(attributes, resource, String(v), conditions, principal, requestId);
    return res;
  };
}
