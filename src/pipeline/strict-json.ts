import { KeygateError } from '../errors/keygate-error.ts';

/**
 * A JSON parser (RFC 8259) that refuses duplicate object keys. JSON.parse keeps the last
 * duplicate while other parsers keep the first, so `{"deviceId":"mine","deviceId":"yours"}`
 * could be judged by one value and executed with the other (invariant 4).
 */
export function parseStrictJson(text: string): unknown {
  const p = new Parser(text);
  p.ws();
  const value = p.value(0);
  p.ws();
  if (p.i !== text.length) p.fail('unexpected data after the JSON value');
  return value;
}

const MAX_DEPTH = 64;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const HEX4 = /^[0-9a-fA-F]{4}$/;

class Parser {
  readonly s: string;
  i = 0;

  constructor(s: string) {
    this.s = s;
  }

  fail(why: string, code: 'INVALID_JSON' | 'DUPLICATE_JSON_KEY' = 'INVALID_JSON'): never {
    throw new KeygateError(code, { detail: `${why} at offset ${this.i}` });
  }

  ws(): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.i++;
      else break;
    }
  }

  value(depth: number): unknown {
    if (depth > MAX_DEPTH) this.fail('nesting too deep');
    const c = this.s[this.i];
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
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

  number(): number {
    NUMBER.lastIndex = this.i;
    const found = NUMBER.exec(this.s);
    if (found === null || found[0] === '') this.fail('unexpected token');
    this.i += found[0].length;
    return Number(found[0]);
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

  object(depth: number): Record<string, unknown> {
    this.i++;
    const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    const seen = new Set<string>();
    this.ws();
    if (this.s[this.i] === '}') {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.s[this.i] !== '"') this.fail('expected a string key');
      const key = this.string();
      if (seen.has(key)) this.fail(`duplicate key ${JSON.stringify(key)}`, 'DUPLICATE_JSON_KEY');
      seen.add(key);
      this.ws();
      if (this.s[this.i] !== ':') this.fail('expected ":"');
      this.i++;
      this.ws();
      out[key] = this.value(depth + 1);
      this.ws();
      const c = this.s[this.i];
      this.i++;
      if (c === '}') return out;
      if (c !== ',') this.fail('expected "," or "}"');
    }
  }

  array(depth: number): unknown[] {
    this.i++;
    const out: unknown[] = [];
    this.ws();
    if (this.s[this.i] === ']') {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      out.push(this.value(depth + 1));
      this.ws();
      const c = this.s[this.i];
      this.i++;
      if (c === ']') return out;
      if (c !== ',') this.fail('expected "," or "]"');
    }
  }
}

/**
 * A backend answer Keygate must prove something from, parsed strictly: duplicate keys (or
 * anything not JSON) make it unusable, which is the backend's fault, so 502.
 */
export function parseUpstreamStrict(text: string, what: string): unknown {
  try {
    return parseStrictJson(text);
  } catch (err) {
    throw new KeygateError('UPSTREAM_BAD_RESPONSE', { detail: `${what} is not strict JSON: ${(err as KeygateError).detail ?? ''}` });
  }
}
