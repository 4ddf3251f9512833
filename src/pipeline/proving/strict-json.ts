import { KeygateError } from '../../errors/keygate-error.ts';
import { foldName, hasControl } from './fold.ts';

/**
 * JSON parsers (RFC 8259) for what Keygate judges, each refusing what other parsers read
 * differently. JSON.parse keeps the last duplicate while other parsers keep the first, so
 * `{"deviceId":"mine","deviceId":"yours"}` could be judged by one value and executed with
 * the other; Go and ASP.NET read `DeviceId` as `deviceId`; a C parser reads
 * `deviceId\u0000` as `deviceId`; JavaScript reads 9007199254740993 as …992.
 *
 * Numbers: a canonical integer (no fraction, exponent, leading zero or `-0`) that is a
 * safe integer becomes a number; every other number becomes `JSON.rawJSON(text)`, an
 * object holding its exact text. So a number is never compared through a rounding float,
 * and an id or owner given as `9007199254740993` or `1.0` is not a string or a safe
 * integer: it matches nothing.
 */

/** Set on a parsed answer object whose owner keys cannot be read one way (see parseAnswer). */
export const AMBIGUOUS: unique symbol = Symbol('keygate.ambiguous');

const rawJSON = (JSON as unknown as { rawJSON(text: string): object }).rawJSON;

const MAX_DEPTH = 64;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const INTEGER = /^-?(?:0|[1-9]\d{0,15})$/;
const HEX4 = /^[0-9a-fA-F]{4}$/;

function exactNumber(text: string): number | object {
  if (INTEGER.test(text) && text !== '-0') {
    const n = Number(text);
    if (Number.isSafeInteger(n)) return n;
  }
  return rawJSON(text);
}

/** How duplicate and look-alike keys are treated: request bodies, lookup answers, answers a client reads. */
const MODE = { request: 0, lookup: 1, answer: 2 } as const;
type Mode = (typeof MODE)[keyof typeof MODE];

class Parser {
  readonly s: string;
  readonly mode: Mode;
  /** Answer mode: folded owner key → its exact spelling. */
  readonly watched: ReadonlyMap<string, string> | null;
  /** Answer mode, lists: [start, end) of each list item in the text. */
  ranges: number[] | null = null;
  i = 0;

  constructor(s: string, mode: Mode, watched: ReadonlyMap<string, string> | null = null) {
    this.s = s;
    this.mode = mode;
    this.watched = watched;
  }

  /** `field`: the key a request body repeats, named to the client (its own body; never a backend answer's). */
  fail(why: string, code: 'INVALID_JSON' | 'DUPLICATE_JSON_KEY' | 'INVALID_JSON_KEY' = 'INVALID_JSON', field?: string): never {
    throw new KeygateError(code, field === undefined ? { detail: `${why} at offset ${this.i}` } : { detail: `${why} at offset ${this.i}`, field });
  }

  ws(): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.i++;
      else break;
    }
  }

  /** `list`: this value is the answer's list (a bare array, or the envelope around `data`). */
  value(depth: number, list = false): unknown {
    if (depth > MAX_DEPTH) this.fail('nesting too deep');
    const c = this.s[this.i];
    if (c === '{') return this.object(depth, list);
    if (c === '[') return this.array(depth, list);
    if (c === '"') return this.string();
    if (c === 't') return this.literal('true', true);
    if (c === 'f') return this.literal('false', false);
    if (c === 'n') return this.literal('null', null);
    return this.number();
  }

  literal<T>(word: string, value: T): T {
    if (!this.s.startsWith(word, this.i)) this.fail('unexpected token');
    this.i += word.length;
    return value;
  }

  number(): number | object {
    NUMBER.lastIndex = this.i;
    const found = NUMBER.exec(this.s);
    if (found === null || found[0] === '') this.fail('unexpected token');
    this.i += found[0].length;
    return exactNumber(found[0]);
  }

  string(): string {
    const start = this.i;
    this.i++;
    const s = this.s;
    let escaped = false;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c === 0x22) {
        this.i++;
        const raw = s.slice(start, this.i);
        return escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1);
      }
      if (c < 0x20) this.fail('control character in string');
      if (c === 0x5c) {
        escaped = true;
        const n = s[this.i + 1];
        if (n === 'u') {
          if (!HEX4.test(s.slice(this.i + 2, this.i + 6))) this.fail('bad \\u escape');
          this.i += 6;
          continue;
        }
        if (n === undefined || !'"\\/bfnrt'.includes(n)) this.fail('bad escape');
        this.i += 2;
        continue;
      }
      this.i++;
    }
    return this.fail('unterminated string');
  }

  object(depth: number, envelope: boolean): Record<string, unknown> {
    this.i++;
    const out: Record<string | symbol, unknown> = Object.create(null) as Record<string, unknown>;
    // request: folded key → first spelling; lookup: exact keys; answer: folded owner keys seen.
    let folded: Map<string, string> | null = null;
    let exact: Set<string> | null = null;
    let owners: string[] | null = null;
    let ambiguous = false;
    this.ws();
    if (this.s[this.i] === '}') {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.s[this.i] !== '"') this.fail('expected a string key');
      const key = this.string();
      if (this.mode === MODE.request) {
        if (hasControl(key)) this.fail(`control or format character in key ${JSON.stringify(key)}`, 'INVALID_JSON_KEY');
        const f = foldName(key);
        const first = (folded ??= new Map()).get(f);
        if (first !== undefined) {
          this.fail(
            first === key ? `duplicate key ${JSON.stringify(key)}` : `keys ${JSON.stringify(first)} and ${JSON.stringify(key)} are one key to case-insensitive parsers`,
            'DUPLICATE_JSON_KEY',
            key,
          );
        }
        folded.set(f, key);
      } else if (this.mode === MODE.lookup) {
        if ((exact ??= new Set()).has(key)) this.fail(`duplicate key ${JSON.stringify(key)}`, 'DUPLICATE_JSON_KEY');
        exact.add(key);
      } else if (this.watched !== null) {
        const f = foldName(key);
        const spelling = this.watched.get(f);
        if (spelling !== undefined) {
          if (key !== spelling || (owners ??= []).includes(f)) ambiguous = true;
          else owners.push(f);
        }
      }
      this.ws();
      if (this.s[this.i] !== ':') this.fail('expected ":"');
      this.i++;
      this.ws();
      out[key] = this.value(depth + 1, envelope && depth === 0 && key === 'data');
      this.ws();
      const c = this.s[this.i];
      this.i++;
      if (c === '}') break;
      if (c !== ',') this.fail('expected "," or "}"');
    }
    if (ambiguous) out[AMBIGUOUS] = true;
    return out as Record<string, unknown>;
  }

  array(depth: number, record: boolean): unknown[] {
    this.i++;
    const out: unknown[] = [];
    const ranges: number[] | null = record ? (this.ranges = []) : null;
    this.ws();
    if (this.s[this.i] === ']') {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      const start = this.i;
      out.push(this.value(depth + 1));
      ranges?.push(start, this.i);
      this.ws();
      const c = this.s[this.i];
      this.i++;
      if (c === ']') return out;
      if (c !== ',') this.fail('expected "," or "]"');
    }
  }
}

function parseWith(p: Parser, list = false): unknown {
  p.ws();
  const value = p.value(0, list);
  p.ws();
  if (p.i !== p.s.length) p.fail('unexpected data after the JSON value');
  return value;
}

/**
 * A request body the policy reads. Refused (400): duplicate keys, also after folding
 * (fold.ts: `DeviceId`, `device_id`, `ｄｅｖｉｃｅＩｄ` are all `deviceId`), and keys
 * holding control or format characters (`deviceId\u0000`).
 */
export function parseStrictJson(text: string): unknown {
  return parseWith(new Parser(text, MODE.request));
}

/** A backend answer Keygate must prove something from: anything but strict JSON is the backend's fault, so 502. */
function upstreamFailure(err: unknown, what: string): never {
  throw new KeygateError('UPSTREAM_BAD_RESPONSE', { detail: `${what} is not strict JSON: ${(err as KeygateError).detail ?? String(err)}` });
}

/** An attribute lookup's answer: duplicate keys make it unusable. */
export function parseUpstreamStrict(text: string, what: string): unknown {
  try {
    return parseWith(new Parser(text, MODE.lookup));
  } catch (err) {
    return upstreamFailure(err, what);
  }
}

export interface ParsedAnswer {
  readonly value: unknown;
  /** For a list: [start, end) of each item of the list in the text; null when there is no list array. */
  readonly ranges: readonly number[] | null;
}

/**
 * An answer a client will read. Duplicate keys are left to the last, as JSON.parse does,
 * except for the owner keys in `watched` (folded → exact spelling): an object naming one
 * twice, or in another spelling (`ReferenceId`, `reference_id`, `referenc\u0065Id` is
 * fine: keys are compared unescaped), is marked AMBIGUOUS, and the checks treat it as
 * another user's. With `list`, the item ranges of the list are recorded so that the
 * items released are the backend's own bytes.
 */
export function parseAnswer(text: string, watched: ReadonlyMap<string, string>, list: boolean): ParsedAnswer {
  const p = new Parser(text, MODE.answer, watched);
  try {
    const value = parseWith(p, list);
    return { value, ranges: p.ranges };
  } catch (err) {
    return upstreamFailure(err, 'checked response');
  }
}
