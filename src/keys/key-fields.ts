import { holdsKeyLoosely } from './key-format.ts';
import { carriesRoles, isPublicType, isValidReferenceId, type KeyType, parseConditionArgs, REFERENCE_ID_RULE } from './key-record.ts';
import { OriginRuleError, parseList, parseOrigin, parseRedirect } from './origin-rules.ts';

/**
 * The rules for each settable field of a key, shared by every way a key is made or
 * changed (`keys create`/`keys update`, the management API, the Connect flow), so that no
 * path stores what another would refuse. Each rule returns the normalised value or throws
 * a KeyInputError naming the field, which the caller names as its own flag or body field.
 */
export type KeyField = 'type' | 'referenceId' | 'name' | 'description' | 'roles' | 'conditions' | 'expiresAt' | 'allowedOrigins' | 'allowedRedirects' | 'allowReferenceId' | 'createdBy' | 'linkId';

export class KeyInputError extends Error {
  override readonly name = 'KeyInputError';
  readonly field: KeyField;
  constructor(field: KeyField, message: string) {
    super(message);
    this.field = field;
  }
}

const MAX_NAME = 200;
const MAX_DESCRIPTION = 2000;
const MAX_ROLES = 50;
const MAX_CONDITION_ATTRIBUTES = 20;
const MAX_CONDITION_VALUES = 100;

/** A role name as the policy writes it (policy/drafts.ts). */
const ROLE_NAME = /^[a-z][a-zA-Z0-9_-]{0,63}$/;
/** An attribute: what the policy's resources name (`referenceId`, `factoryId`, `customFields.x`). */
const ATTRIBUTE = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
/** A condition value becomes a filter value: no comma (the filter's separator), no control character. */
const VALUE = /^[^,\x00-\x1f\x7f]{1,256}$/;
/** Text for people: no control characters (they would break the CLI's table and a terminal). */
const CONTROL = /[\x00-\x1f\x7f]/;

function text(field: 'name' | 'description', value: unknown, max: number): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string') throw new KeyInputError(field, `${field} must be a string`);
  if (value.length > max) throw new KeyInputError(field, `${field} is longer than ${max} characters`);
  if (field === 'name' && CONTROL.test(value)) throw new KeyInputError(field, 'name may not hold control characters');
  if (holdsKeyLoosely(value)) throw new KeyInputError(field, `${field} may not hold an API key (it is shown in lists and logged)`);
  return value === '' ? null : value;
}

export function checkName(value: unknown): string | null {
  return text('name', value, MAX_NAME);
}

export function checkDescription(value: unknown): string | null {
  return text('description', value, MAX_DESCRIPTION);
}

export function checkReferenceId(type: KeyType, value: unknown): string | null {
  if (value === undefined || value === null) {
    if (type === 'scoped') throw new KeyInputError('referenceId', 'a scoped key needs a referenceId (the end user it is scoped to)');
    return null;
  }
  if (typeof value !== 'string' || !isValidReferenceId(value)) {
    throw new KeyInputError('referenceId', `a referenceId is ${REFERENCE_ID_RULE} (no spaces or control characters)`);
  }
  // It is sent to the backend as the filter and written to the key's log lines and events.
  if (holdsKeyLoosely(value)) throw new KeyInputError('referenceId', 'a referenceId may not hold an API key (it is sent to the backend and logged)');
  return value;
}

function stringArray(field: KeyField, value: unknown, max: number): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw new KeyInputError(field, `${field} must be a list of strings`);
  if (value.length > max) throw new KeyInputError(field, `${field}: at most ${max} entries`);
  return value as string[];
}

export function checkRoles(type: KeyType, value: unknown): string[] {
  if (value === undefined || value === null) return [];
  const roles = stringArray('roles', value, MAX_ROLES);
  for (const r of roles) if (!ROLE_NAME.test(r)) throw new KeyInputError('roles', `role "${r}" must match ${ROLE_NAME.source}`);
  if (new Set(roles).size !== roles.length) throw new KeyInputError('roles', 'a role is listed twice');
  if (roles.length > 0 && !carriesRoles(type)) {
    throw new KeyInputError('roles', 'roles and conditions are for operator keys and access tokens; other key types take their roles from the policy');
  }
  return roles;
}

/** Conditions as `{attribute: [values]}` or as `attr:value` strings (the EVRYTHNG and CLI form). */
export function checkConditions(type: KeyType, value: unknown): Record<string, string[]> {
  if (value === undefined || value === null) return {};
  let grouped: Record<string, unknown>;
  if (Array.isArray(value)) {
    try {
      grouped = parseConditionArgs(stringArray('conditions', value, MAX_CONDITION_ATTRIBUTES * MAX_CONDITION_VALUES));
    } catch (err) {
      if (err instanceof KeyInputError) throw err;
      throw new KeyInputError('conditions', (err as Error).message);
    }
  } else if (typeof value === 'object') {
    grouped = value as Record<string, unknown>;
  } else {
    throw new KeyInputError('conditions', 'conditions must be an object of attribute: [values] (or a list of "attribute:value")');
  }
  const out: Record<string, string[]> = {};
  const attributes = Object.keys(grouped);
  if (attributes.length > MAX_CONDITION_ATTRIBUTES) throw new KeyInputError('conditions', `at most ${MAX_CONDITION_ATTRIBUTES} attributes`);
  for (const attribute of attributes) {
    if (!ATTRIBUTE.test(attribute)) throw new KeyInputError('conditions', `condition attribute "${attribute}" must match ${ATTRIBUTE.source}`);
    // JSON.parse makes "__proto__" an own key; assigned below it would set the prototype, and the condition would vanish.
    if (attribute === '__proto__') throw new KeyInputError('conditions', 'condition attribute "__proto__" is not allowed');
    // An attribute is shown with the key, logged, and sent to the backend as a parameter name.
    if (holdsKeyLoosely(attribute)) throw new KeyInputError('conditions', 'a condition attribute may not hold an API key');
    const raw = grouped[attribute];
    const values = typeof raw === 'string' ? [raw] : raw;
    if (!Array.isArray(values) || values.length === 0 || values.some((v) => typeof v !== 'string')) {
      throw new KeyInputError('conditions', `conditions.${attribute} must be a non-empty list of strings`);
    }
    if (values.length > MAX_CONDITION_VALUES) throw new KeyInputError('conditions', `conditions.${attribute}: at most ${MAX_CONDITION_VALUES} values`);
    for (const v of values as string[]) {
      if (!VALUE.test(v)) throw new KeyInputError('conditions', `conditions.${attribute}: "${v}" must be 1 to 256 characters without commas or control characters`);
      // A condition value is sent to the backend as the filter, and shown with the key.
      if (holdsKeyLoosely(v)) throw new KeyInputError('conditions', `conditions.${attribute}: a value may not hold an API key`);
    }
    out[attribute] = [...new Set(values as string[])];
  }
  if (attributes.length > 0 && !carriesRoles(type)) {
    throw new KeyInputError('conditions', 'roles and conditions are for operator keys and access tokens; other key types take their roles from the policy');
  }
  return out;
}

function originList(field: 'allowedOrigins' | 'allowedRedirects', value: unknown, one: (raw: string) => string, what: string): string[] {
  if (value === undefined || value === null) return [];
  const raw = stringArray(field, value, Infinity);
  for (const r of raw) if (holdsKeyLoosely(r)) throw new KeyInputError(field, `${field}: an entry may not hold an API key`);
  try {
    return parseList(raw, one, what);
  } catch (err) {
    if (err instanceof OriginRuleError) throw new KeyInputError(field, err.message);
    throw err;
  }
}

/** Origins are for public keys (connect, scoped): a secret key used from a browser is refused whatever it lists. */
export function checkOrigins(type: KeyType, value: unknown): string[] {
  const origins = originList('allowedOrigins', value, parseOrigin, 'allowed origins');
  if (origins.length > 0 && !isPublicType(type)) {
    throw new KeyInputError('allowedOrigins', `allowed origins are for connect and scoped keys; a ${type} key is secret and never used from a browser`);
  }
  return origins;
}

/** Redirects are where Connect links made with the key may send the user back: not for scoped keys, which make none. */
export function checkRedirects(type: KeyType, value: unknown): string[] {
  const redirects = originList('allowedRedirects', value, parseRedirect, 'allowed redirects');
  if (redirects.length > 0 && type === 'scoped') throw new KeyInputError('allowedRedirects', 'a scoped key makes no Connect links: it has no redirects');
  return redirects;
}

export function checkAllowReferenceId(type: KeyType, value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') throw new KeyInputError('allowReferenceId', 'allowReferenceId must be true or false');
  if (value && type !== 'connect') throw new KeyInputError('allowReferenceId', 'allowReferenceId is for connect keys (other keys that may make links choose any referenceId)');
  return value;
}

/** RFC 3339 with a time zone: what an API client sends and every store reads back the same. */
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;

/** `YYYY-MM-DD` at the start names a real day: Date.parse rolls 2030-02-30 over to March 2 instead of refusing it. */
function isCalendarDate(value: string): boolean {
  const year = Number(value.slice(0, 4));
  const month = Number(value.slice(5, 7));
  const day = Number(value.slice(8, 10));
  return month >= 1 && month <= 12 && day >= 1 && day <= new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/**
 * `hh:mm:ss` and the offset name a time of a day (RFC 3339 §5.6: hours 00-23, minutes and
 * seconds 00-59): Date.parse reads `T24:00:00Z` as the next day's midnight instead of
 * refusing it. A leap second (`:60`) Date.parse refuses anyway.
 */
function isTimeOfDay(value: string): boolean {
  const t = value.indexOf('T');
  const hour = Number(value.slice(t + 1, t + 3));
  const minute = Number(value.slice(t + 4, t + 6));
  const second = Number(value.slice(t + 7, t + 9));
  if (hour > 23 || minute > 59 || second > 59) return false;
  const zone = /([+-])(\d{2}):(\d{2})$/.exec(value);
  return zone === null || (Number(zone[2]) <= 23 && Number(zone[3]) <= 59);
}

/** An expiry, in the future, as ISO 8601 UTC; null for never. */
export function checkExpiresAt(value: unknown, nowMs: number): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string' || !TIMESTAMP.test(value) || Number.isNaN(Date.parse(value))) {
    throw new KeyInputError('expiresAt', 'expiresAt must be an RFC 3339 time with a time zone, e.g. 2030-01-31T12:00:00Z, or null');
  }
  if (!isCalendarDate(value)) throw new KeyInputError('expiresAt', `expiresAt: ${value.slice(0, 10)} is not a day of the calendar`);
  if (!isTimeOfDay(value)) throw new KeyInputError('expiresAt', `expiresAt: ${value.slice(11)} is not a time of a day (hours 00-23, minutes and seconds 00-59)`);
  const ms = Date.parse(value);
  if (ms <= nowMs) throw new KeyInputError('expiresAt', 'expiresAt must be in the future');
  return new Date(ms).toISOString();
}
