import { KeygateError } from '../errors/keygate-error.ts';
import { holdsKeyLoosely } from '../keys/key-format.ts';
import { isValidReferenceId, REFERENCE_ID_RULE } from '../keys/key-record.ts';
import { parseRedirect, type RedirectTarget } from './redirect-url.ts';

/** The body of `POST /v1/connections` (Texture's fields, plus `state`), checked. */
export interface LinkRequest {
  readonly redirect: RedirectTarget;
  readonly referenceId: string | null;
  readonly clientName: string | null;
  readonly tags: readonly string[];
  readonly customerInfo: Readonly<Record<string, string>> | null;
  /** Device type → manufacturers the device step may offer. */
  readonly manufacturerFilters: Readonly<Record<string, readonly string[]>> | null;
  readonly state: string | null;
}

const FIELDS = ['redirectUrl', 'referenceId', 'clientName', 'tags', 'customerInfo', 'manufacturerFilters', 'state'] as const;
const KNOWN: ReadonlySet<string> = new Set(FIELDS);

const LIMITS = { clientName: 100, state: 512, tags: 50, tag: 64, customerFields: 20, customerValue: 256, filterTypes: 20, filterMakers: 50, filterName: 64 } as const;

/** Control and format characters: nothing a page shows or a URL carries may hide text. */
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

function firstFieldHoldingKey(body: Record<string, unknown>): string | undefined {
  return Object.keys(body).find((k) => holdsKeyLoosely(k) || holdsKeyLoosely(JSON.stringify(body[k]) ?? ''));
}

/** `field` is the top-level field at fault (`tags`, `customerInfo`), sent as `error.field`. */
function invalid(message: string, field?: string): KeygateError {
  const name = field ?? /^[A-Za-z]+/.exec(message)?.[0];
  return new KeygateError('INVALID_FIELD', { message, detail: message, ...(name !== undefined && (KNOWN.has(name) || field !== undefined) ? { field: name } : {}) });
}

function text(field: string, value: unknown, max: number): string {
  if (typeof value !== 'string') throw invalid(`${field} must be a string`);
  if (value.length === 0 || value.length > max) throw invalid(`${field} must be 1 to ${max} characters`);
  if (INVISIBLE.test(value)) throw invalid(`${field} may not contain control or invisible characters`);
  if (holdsKeyLoosely(value)) throw invalid(`${field} may not hold an API key (it is kept with the link and shown on its page)`);
  return value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringList(field: string, value: unknown, maxItems: number, maxLength: number, pattern?: RegExp): string[] {
  if (!Array.isArray(value)) throw invalid(`${field} must be an array of strings`);
  if (value.length > maxItems) throw invalid(`${field} may hold at most ${maxItems} entries`);
  return value.map((v, i) => {
    const s = text(`${field}[${i}]`, v, maxLength);
    if (pattern !== undefined && !pattern.test(s)) throw invalid(`${field}[${i}] must be letters, digits, '.', '_', ':' or '-'`);
    return s;
  });
}

/** Validates the whole body, naming the first field that is wrong; unknown fields are refused, not ignored. */
export function parseLinkRequest(body: unknown): LinkRequest {
  if (!isPlainObject(body)) throw invalid('the body must be a JSON object');
  for (const name of Object.keys(body)) {
    if (!KNOWN.has(name)) throw invalid(`unknown field "${name}" (known: ${FIELDS.join(', ')})`, name);
  }
  const get = (name: (typeof FIELDS)[number]): unknown => (body[name] === null ? undefined : body[name]);
  const redirectUrl = get('redirectUrl');
  if (redirectUrl === undefined) throw invalid('redirectUrl is required');
  if (typeof redirectUrl !== 'string') throw invalid('redirectUrl must be a string');
  const redirect = parseRedirect(redirectUrl);
  if (typeof redirect === 'string') throw invalid(`redirectUrl ${redirect}`);
  if (holdsKeyLoosely(redirectUrl)) throw invalid('redirectUrl may not hold an API key');

  let referenceId: string | null = null;
  const ref = get('referenceId');
  if (ref !== undefined) {
    if (typeof ref !== 'string' || !isValidReferenceId(ref)) throw invalid(`referenceId must be ${REFERENCE_ID_RULE}`);
    if (holdsKeyLoosely(ref)) throw invalid('referenceId may not hold an API key (it is sent to the backend as the filter)');
    referenceId = ref;
  }
  const clientName = get('clientName') === undefined ? null : text('clientName', get('clientName'), LIMITS.clientName);
  const state = get('state') === undefined ? null : text('state', get('state'), LIMITS.state);
  const tags = get('tags') === undefined ? [] : stringList('tags', get('tags'), LIMITS.tags, LIMITS.tag);

  let customerInfo: Record<string, string> | null = null;
  const ci = get('customerInfo');
  if (ci !== undefined) {
    if (!isPlainObject(ci)) throw invalid('customerInfo must be an object of strings');
    const entries = Object.entries(ci);
    if (entries.length > LIMITS.customerFields) throw invalid(`customerInfo may hold at most ${LIMITS.customerFields} fields`);
    customerInfo = {};
    for (const [k, v] of entries) {
      if (!NAME.test(k) || k.length > LIMITS.filterName) throw invalid(`customerInfo field "${k}" is not a valid name`);
      customerInfo[k] = text(`customerInfo.${k}`, v, LIMITS.customerValue);
    }
  }

  let manufacturerFilters: Record<string, string[]> | null = null;
  const mf = get('manufacturerFilters');
  if (mf !== undefined) {
    if (!isPlainObject(mf)) throw invalid('manufacturerFilters must be an object: device type → array of manufacturers');
    const entries = Object.entries(mf);
    if (entries.length > LIMITS.filterTypes) throw invalid(`manufacturerFilters may name at most ${LIMITS.filterTypes} device types`);
    manufacturerFilters = {};
    for (const [type, makers] of entries) {
      if (!NAME.test(type) || type.length > LIMITS.filterName) throw invalid(`manufacturerFilters device type "${type}" is not a valid name`);
      manufacturerFilters[type] = stringList(`manufacturerFilters.${type}`, makers, LIMITS.filterMakers, LIMITS.filterName, NAME);
    }
  }
  // Names too (`customerInfo: {"api_…": …}`): what a link keeps is stored and shown.
  if (holdsKeyLoosely(JSON.stringify(body))) throw invalid('a link may not hold an API key (api_…, scoped_…) in any field or name', firstFieldHoldingKey(body));
  return { redirect, referenceId, clientName, tags, customerInfo, manufacturerFilters, state };
}
