import { isAlias, isMap, isScalar, isSeq, toJS, type YamlMap, type YamlNode } from './yaml-tree.ts';
import type { YamlWalker } from './yaml-walker.ts';

/**
 * A small description of a YAML document's shape, written once and used twice: to read a
 * document with positions (every unknown field, wrong type or bad value is an issue at
 * its `file:line:col`) and to write the JSON Schema editors validate the same files with.
 * Each value's TypeScript type follows from its shape (Infer), so the code that uses a
 * document sees exactly the fields its shape lists.
 */
interface Described {
  readonly description?: string;
}

export interface StringShape<T extends string = string> extends Described {
  readonly kind: 'string';
  readonly enum?: readonly T[];
  readonly pattern?: RegExp;
  /** What `pattern` asks for, in words, for the error message. */
  readonly patternHint?: string;
  readonly minLength?: number;
  /** A check that needs more than the shape (a role of the loaded policy): its name in the reader's `refs`. */
  readonly ref?: string;
}

export interface IntegerShape extends Described {
  readonly kind: 'integer';
  readonly minimum: number;
  readonly maximum?: number;
}

export interface BooleanShape extends Described {
  readonly kind: 'boolean';
}

export interface NullShape extends Described {
  readonly kind: 'null';
}

/** Any value, read as YAML reads it (a request body, a fixture's attributes). */
export interface JsonShape extends Described {
  readonly kind: 'json';
}

export interface ListShape<I extends Shape = Shape> extends Described {
  readonly kind: 'list';
  readonly items: I;
  readonly minItems?: number;
  readonly maxItems?: number;
}

/** A mapping with keys of the author's choosing (header names, resource names). */
export interface MapShape<V extends Shape = Shape> extends Described {
  readonly kind: 'map';
  readonly keys?: StringShape;
  readonly values: V;
}

export type Fields = Readonly<Record<string, Shape>>;

/** A mapping with a fixed set of fields: any other is refused. */
export interface ObjectShape<F extends Fields = Fields, R extends keyof F = keyof F> extends Described {
  readonly kind: 'object';
  readonly fields: F;
  readonly required: readonly R[];
  readonly minProperties?: number;
  /** Said when the mapping has fewer than minProperties fields. */
  readonly emptyHint?: string;
}

/** One of several shapes, told apart by the YAML node's kind (a string, a list, a mapping or null). */
export interface AnyOfShape<O extends readonly Shape[] = readonly Shape[]> extends Described {
  readonly kind: 'anyOf';
  readonly options: O;
}

export type Shape = StringShape | IntegerShape | BooleanShape | NullShape | JsonShape | ListShape | MapShape | ObjectShape | AnyOfShape;

export type Infer<S> =
  S extends StringShape<infer T>
    ? T
    : S extends IntegerShape
      ? number
      : S extends BooleanShape
        ? boolean
        : S extends NullShape
          ? null
          : S extends JsonShape
            ? unknown
            : S extends ListShape<infer I>
              ? Infer<I>[]
              : S extends MapShape<infer V>
                ? Record<string, Infer<V>>
                : S extends AnyOfShape<infer O>
                  ? Infer<O[number]>
                  : S extends ObjectShape<infer F, infer R>
                    ? { [K in R]: Infer<F[K]> } & { [K in Exclude<keyof F, R>]?: Infer<F[K]> }
                    : never;

type Opts<S> = Omit<S, 'kind'>;

export const string = <const T extends string = string>(opts: Opts<StringShape<T>> = {}): StringShape<T> => ({ kind: 'string', ...opts });
export const integer = (opts: Opts<IntegerShape>): IntegerShape => ({ kind: 'integer', ...opts });
export const boolean = (opts: Opts<BooleanShape> = {}): BooleanShape => ({ kind: 'boolean', ...opts });
export const nullValue = (opts: Opts<NullShape> = {}): NullShape => ({ kind: 'null', ...opts });
export const json = (opts: Opts<JsonShape> = {}): JsonShape => ({ kind: 'json', ...opts });
export const list = <I extends Shape>(items: I, opts: Omit<Opts<ListShape<I>>, 'items'> = {}): ListShape<I> => ({ kind: 'list', items, ...opts });
export const map = <V extends Shape>(values: V, opts: Omit<Opts<MapShape<V>>, 'values'> = {}): MapShape<V> => ({ kind: 'map', values, ...opts });
export const anyOf = <const O extends readonly Shape[]>(options: O, opts: Omit<Opts<AnyOfShape<O>>, 'options'> = {}): AnyOfShape<O> => ({ kind: 'anyOf', options, ...opts });
export function object<F extends Fields, R extends keyof F & string = never>(
  fields: F,
  opts: Omit<Opts<ObjectShape<F, R>>, 'fields' | 'required'> & { readonly required?: readonly R[] } = {},
): ObjectShape<F, R> {
  return { kind: 'object', fields, ...opts, required: opts.required ?? [] };
}

/** Checks a shape's `ref` names; each answers an error message, or undefined when the value is fine. */
export type Refs = Readonly<Record<string, (value: string) => string | undefined>>;

/** A YAML node's value as read by readShape, with the node it came from (for later checks that need a position). */
const NODE: unique symbol = Symbol('yaml node');

const DROP: unique symbol = Symbol('drop');

/** `sub-path` of a value: `tests[2].expect` under `tests[2]`; the document itself is ''. */
function sub(what: string, key: string): string {
  return what === '' ? key : `${what}.${key}`;
}

function label(what: string): string {
  return what === '' ? 'the file' : what;
}

/** Edit distance, for "did you mean": a misspelt field is the mistake this reader exists to catch. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

export function didYouMean(value: string, known: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of known) {
    const d = distance(value.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best === undefined ? '' : `did you mean "${best}"? `;
}

function kindOf(node: YamlNode | null): 'null' | 'string' | 'number' | 'boolean' | 'list' | 'mapping' | 'other' {
  if (node === null) return 'null';
  if (isScalar(node)) {
    const v = node.value;
    if (v === null) return 'null';
    if (typeof v === 'string') return 'string';
    if (typeof v === 'number' || typeof v === 'bigint') return 'number';
    if (typeof v === 'boolean') return 'boolean';
    return 'other';
  }
  if (isSeq(node)) return 'list';
  if (isMap(node)) return 'mapping';
  return 'other';
}

function accepts(shape: Shape, kind: ReturnType<typeof kindOf>): boolean {
  switch (shape.kind) {
    case 'string':
      return kind === 'string';
    case 'integer':
      return kind === 'number';
    case 'boolean':
      return kind === 'boolean';
    case 'null':
      return kind === 'null';
    case 'json':
      return true;
    case 'list':
      return kind === 'list';
    case 'map':
    case 'object':
      return kind === 'mapping';
    case 'anyOf':
      return shape.options.some((o) => accepts(o, kind));
  }
}

function expected(shape: Shape): string {
  switch (shape.kind) {
    case 'string':
      return shape.enum !== undefined ? `one of ${shape.enum.join(', ')}` : 'a string';
    case 'integer':
      return 'an integer';
    case 'boolean':
      return 'true or false';
    case 'null':
      return 'null';
    case 'json':
      return 'a value';
    case 'list':
      return 'a list';
    case 'map':
    case 'object':
      return 'a mapping';
    case 'anyOf':
      return shape.options.map(expected).join(' or ');
  }
}

/**
 * Reads `node` as `shape`, reporting every problem through the walker (with its position)
 * and leaving out what it could not read. Aliases are followed, so a test file may name a
 * key once (`&alice`) and use it in many cases (`*alice`).
 */
export class ShapeReader {
  readonly #w: YamlWalker;
  readonly #refs: Refs;

  constructor(w: YamlWalker, refs: Refs = {}) {
    this.#w = w;
    this.#refs = refs;
  }

  read<S extends Shape>(node: YamlNode | null, shape: S, what: string): Infer<S> | undefined {
    const v = this.#read(node, shape, what, node);
    return (v === DROP ? undefined : v) as never;
  }

  #resolve(node: YamlNode | null): YamlNode | null {
    if (isAlias(node)) return node.target;
    return node;
  }

  #read(raw: YamlNode | null, shape: Shape, what: string, at: YamlNode | null): unknown {
    const node = this.#resolve(raw);
    const kind = kindOf(node);
    const where = raw ?? at;
    if (!accepts(shape, kind)) {
      const quote = kind === 'number' && accepts(shape, 'string') ? ` (quote it: '${String((node as { value: unknown }).value)}')` : '';
      this.#w.fail(where, `${label(what)} must be ${expected(shape)}${quote}`);
      return DROP;
    }
    switch (shape.kind) {
      case 'string':
        return this.#string((node as { value: string }).value, shape, what, where);
      case 'integer': {
        const n = Number((node as { value: number }).value);
        if (!Number.isInteger(n) || n < shape.minimum || (shape.maximum !== undefined && n > shape.maximum)) {
          this.#w.fail(where, `${label(what)} must be an integer from ${shape.minimum}${shape.maximum === undefined ? ' up' : ` to ${shape.maximum}`}, not ${n}`);
          return DROP;
        }
        return n;
      }
      case 'boolean':
      case 'null':
        return (node as { value: unknown } | null)?.value ?? null;
      case 'json':
        return this.#json(node, where);
      case 'list':
        return this.#list(node as YamlNode, shape, what, where);
      case 'map':
        return this.#map(node as YamlNode, shape, what);
      case 'object':
        return this.#object(node as YamlNode, shape, what);
      case 'anyOf':
        return this.#read(node, shape.options.find((o) => accepts(o, kind))!, what, where);
    }
  }

  #json(node: YamlNode | null, at: YamlNode | null): unknown {
    if (node === null) return null;
    try {
      return toJS(node);
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      this.#w.fail(at, err.message);
      return DROP;
    }
  }

  #string(value: string, shape: StringShape, what: string, at: YamlNode | null): unknown {
    if (value.length < (shape.minLength ?? 0)) {
      this.#w.fail(at, `${label(what)} must not be empty`);
      return DROP;
    }
    if (shape.enum !== undefined && !shape.enum.includes(value)) {
      this.#w.fail(at, `${label(what)}: unknown value "${value}" (${didYouMean(value, shape.enum)}expected ${shape.enum.join(', ')})`);
      return DROP;
    }
    if (shape.pattern !== undefined && !shape.pattern.test(value)) {
      this.#w.fail(at, `${label(what)}: "${value}" must be ${shape.patternHint ?? `like ${shape.pattern.source}`}`);
      return DROP;
    }
    if (shape.ref !== undefined) {
      const check = this.#refs[shape.ref];
      if (check === undefined) throw new Error(`no check for ref "${shape.ref}"`);
      const problem = check(value);
      if (problem !== undefined) {
        this.#w.fail(at, `${label(what)}: ${problem}`);
        return DROP;
      }
    }
    return value;
  }

  #list(node: YamlNode, shape: ListShape, what: string, at: YamlNode | null): unknown {
    const items = isSeq(node) ? (node.items as YamlNode[]) : [];
    const { minItems = 0, maxItems } = shape;
    if (items.length < minItems || (maxItems !== undefined && items.length > maxItems)) {
      const count = minItems === maxItems ? `exactly ${minItems}` : maxItems === undefined ? `at least ${minItems}` : `${minItems} to ${maxItems}`;
      this.#w.fail(at, `${label(what)} must have ${count} ${minItems === 1 && maxItems === undefined ? 'entry' : 'entries'}, not ${items.length}`);
      return DROP;
    }
    const out: unknown[] = [];
    for (const [i, item] of items.entries()) {
      const v = this.#read(item, shape.items, `${what}[${i}]`, node);
      if (v !== DROP) out.push(v);
    }
    return out;
  }

  #pairs(node: YamlNode, what: string): Array<{ key: string; keyNode: YamlNode; value: YamlNode | null }> {
    const out: Array<{ key: string; keyNode: YamlNode; value: YamlNode | null }> = [];
    for (const pair of (node as YamlMap).items) {
      if (!isScalar(pair.key) || typeof pair.key.value !== 'string') {
        this.#w.fail(pair.key, `${label(what)}: keys must be strings`);
        continue;
      }
      out.push({ key: pair.key.value, keyNode: pair.key, value: pair.value });
    }
    return out;
  }

  #map(node: YamlNode, shape: MapShape, what: string): unknown {
    const out: Record<string, unknown> = {};
    for (const { key, keyNode, value } of this.#pairs(node, what)) {
      if (shape.keys !== undefined && this.#string(key, shape.keys, what, keyNode) === DROP) continue;
      const v = this.#read(value, shape.values, sub(what, key), keyNode);
      if (v !== DROP) out[key] = v;
    }
    return out;
  }

  #object(node: YamlNode, shape: ObjectShape, what: string): unknown {
    const out: Record<string | symbol, unknown> = { [NODE]: node };
    const allowed = Object.keys(shape.fields);
    const pairs = this.#pairs(node, what);
    for (const { key, keyNode, value } of pairs) {
      const field = shape.fields[key];
      if (field === undefined) {
        this.#w.fail(keyNode, `${label(what)}: unknown field "${key}" (${didYouMean(key, allowed)}allowed: ${allowed.join(', ')})`);
        continue;
      }
      const v = this.#read(value, field, sub(what, key), keyNode);
      if (v !== DROP) out[key] = v;
    }
    for (const r of shape.required as string[]) {
      if (!pairs.some((p) => p.key === r)) this.#w.fail(node, `${label(what)} needs "${r}"`);
    }
    if (pairs.length < (shape.minProperties ?? 0)) this.#w.fail(node, `${label(what)} is empty${shape.emptyHint === undefined ? '' : `: ${shape.emptyHint}`}`);
    return out;
  }
}

/** The node a value read by ShapeReader came from (objects only). */
export function nodeOf(value: object): YamlNode | undefined {
  return (value as { [NODE]?: YamlNode })[NODE];
}

/** The JSON Schema (draft-07) of a shape, for editors; refs become what the schema can say (their description). */
export function jsonSchemaOf(shape: Shape): Record<string, unknown> {
  const d = shape.description === undefined ? {} : { description: shape.description };
  switch (shape.kind) {
    case 'string':
      return {
        type: 'string',
        ...d,
        ...(shape.enum === undefined ? {} : { enum: shape.enum }),
        ...(shape.pattern === undefined ? {} : { pattern: shape.pattern.source }),
        ...(shape.minLength === undefined ? {} : { minLength: shape.minLength }),
      };
    case 'integer':
      return { type: 'integer', ...d, minimum: shape.minimum, ...(shape.maximum === undefined ? {} : { maximum: shape.maximum }) };
    case 'boolean':
      return { type: 'boolean', ...d };
    case 'null':
      return { type: 'null', ...d };
    case 'json':
      return { ...d };
    case 'list':
      return {
        type: 'array',
        ...d,
        items: jsonSchemaOf(shape.items),
        ...(shape.minItems === undefined ? {} : { minItems: shape.minItems }),
        ...(shape.maxItems === undefined ? {} : { maxItems: shape.maxItems }),
      };
    case 'map':
      return { type: 'object', ...d, ...(shape.keys === undefined ? {} : { propertyNames: jsonSchemaOf(shape.keys) }), additionalProperties: jsonSchemaOf(shape.values) };
    case 'object':
      return {
        type: 'object',
        ...d,
        additionalProperties: false,
        ...(shape.required.length === 0 ? {} : { required: shape.required }),
        ...(shape.minProperties === undefined ? {} : { minProperties: shape.minProperties }),
        properties: Object.fromEntries(Object.entries(shape.fields).map(([k, s]) => [k, jsonSchemaOf(s)])),
      };
    case 'anyOf':
      return { ...d, anyOf: shape.options.map(jsonSchemaOf) };
  }
}
