import { CORE_SCHEMA, EVENT_ID, type Event, getScalarValue, NOT_RESOLVED, parseEvents, SCALAR_STYLE, type ScalarEvent, type ScalarTagDefinition, YAMLException } from 'js-yaml';

/**
 * A YAML document as policy and test files are read: mappings, sequences, scalars typed by
 * the YAML 1.2 core schema, and aliases, each with the offset it starts at (for
 * `file:line:col`).
 *
 * Built here from js-yaml's event stream (`parseEvents`: tokens with source offsets, no
 * tree) rather than with the `yaml` library's document model, which keeps every token,
 * comment and range of a document: at 10,000 routes `yaml`'s parseDocument took 930 ms of
 * a 1,208 ms load, js-yaml's events 32 ms (docs/performance.md). What the document model
 * gave that events do not — duplicate keys, tags, aliases — is decided here.
 */
export interface YamlScalar {
  readonly kind: 'scalar';
  readonly offset: number;
  readonly value: string | number | boolean | null;
}

export interface YamlSeq {
  readonly kind: 'seq';
  readonly offset: number;
  readonly items: readonly YamlNode[];
}

interface YamlPair {
  readonly key: YamlNode;
  readonly value: YamlNode;
}

export interface YamlMap {
  readonly kind: 'map';
  readonly offset: number;
  readonly items: readonly YamlPair[];
}

/** `*name`: the node anchored `&name`, which the alias stands for (read through it, never copied). */
export interface YamlAlias {
  readonly kind: 'alias';
  readonly offset: number;
  readonly target: YamlNode;
}

export type YamlNode = YamlScalar | YamlSeq | YamlMap | YamlAlias;

export const isScalar = (n: YamlNode | null | undefined): n is YamlScalar => n?.kind === 'scalar';
export const isSeq = (n: YamlNode | null | undefined): n is YamlSeq => n?.kind === 'seq';
export const isMap = (n: YamlNode | null | undefined): n is YamlMap => n?.kind === 'map';
export const isAlias = (n: YamlNode | null | undefined): n is YamlAlias => n?.kind === 'alias';

interface YamlError {
  readonly offset: number;
  readonly message: string;
}

export interface ParsedYaml {
  /** null for an empty file (comments only). */
  readonly contents: YamlNode | null;
  readonly errors: readonly YamlError[];
}

/** The `yaml` library's wording, kept so a duplicate reads as it did before this parser. */
const DUPLICATE_KEY = 'Map keys must be unique';

const SCALAR_TAGS = CORE_SCHEMA.tags.filter((t): t is ScalarTagDefinition => t.nodeKind === 'scalar');
/** Plain scalars are typed by the core schema's implicit tags, in its order (null, bool, int, float). */
const IMPLICIT = SCALAR_TAGS.filter((t) => t.implicit);
const STRING_TAG = SCALAR_TAGS.find((t) => t.tagName === 'tag:yaml.org,2002:str')!;
const COLLECTION_TAGS = new Map([
  [EVENT_ID.SEQUENCE, 'tag:yaml.org,2002:seq'],
  [EVENT_ID.MAPPING, 'tag:yaml.org,2002:map'],
]);

/** `!!int` → `tag:yaml.org,2002:int`, `!<…>` → what it encloses, a lone `!` → '' (not specific). */
function tagName(text: string): string | undefined {
  if (text === '!') return '';
  if (text.startsWith('!!')) return `tag:yaml.org,2002:${text.slice(2)}`;
  if (text.startsWith('!<') && text.endsWith('>')) return text.slice(2, -1);
  return undefined;
}

/**
 * Where a scalar starts as the author sees it: a quoted one at its quote (the event's
 * range is what the quotes enclose), an empty one where `near` says (its key, the item
 * before it), a block scalar at its first line of text.
 */
function scalarOffset(text: string, e: ScalarEvent, near: number): number {
  if (e.valueStart === -1) return near;
  switch (e.style) {
    case SCALAR_STYLE.SINGLE_QUOTED:
    case SCALAR_STYLE.DOUBLE_QUOTED:
      return e.valueStart - 1;
    case SCALAR_STYLE.LITERAL_BLOCK:
    case SCALAR_STYLE.FOLDED_BLOCK: {
      let i = e.valueStart;
      while (i < e.valueEnd && (text[i] === ' ' || text[i] === '\n')) i++;
      return i;
    }
    default:
      return e.valueStart;
  }
}

class TreeBuilder {
  readonly #text: string;
  readonly #events: Event[];
  #at = 0;
  readonly #anchors = new Map<string, YamlNode>();
  readonly errors: YamlError[] = [];

  constructor(text: string, events: Event[]) {
    this.#text = text;
    this.#events = events;
  }

  #fail(offset: number, message: string): void {
    this.errors.push({ offset, message });
  }

  /** The node whose event is next; `near` is where an empty one is said to be. */
  node(near: number): YamlNode {
    const e = this.#events[this.#at++]!;
    let node: YamlNode;
    switch (e.type) {
      case EVENT_ID.SCALAR:
        node = { kind: 'scalar', offset: scalarOffset(this.#text, e, near), value: this.#scalar(e) };
        break;
      case EVENT_ID.ALIAS: {
        const name = this.#text.slice(e.anchorStart, e.anchorEnd);
        const target = this.#anchors.get(name);
        if (target === undefined) {
          this.#fail(e.anchorStart - 1, `unknown anchor: *${name} names no &${name} before it`);
          return { kind: 'scalar', offset: e.anchorStart - 1, value: null };
        }
        return { kind: 'alias', offset: e.anchorStart - 1, target };
      }
      case EVENT_ID.SEQUENCE:
      case EVENT_ID.MAPPING: {
        this.#collectionTag(e.tagStart, e.tagEnd, COLLECTION_TAGS.get(e.type)!);
        node = e.type === EVENT_ID.SEQUENCE ? this.#seq(e.start) : this.#map(e.start);
        break;
      }
      default:
        throw new Error(`YAML event ${e.type} where a node was expected`);
    }
    // Set after the node's content is read: an alias inside it cannot name it (no cycles).
    if (e.anchorStart !== -1) this.#anchors.set(this.#text.slice(e.anchorStart, e.anchorEnd), node);
    return node;
  }

  #scalar(e: ScalarEvent): YamlScalar['value'] {
    const source = getScalarValue(this.#text, e);
    if (e.tagStart !== -1) return this.#tagged(e, source);
    if (e.style !== SCALAR_STYLE.PLAIN) return source;
    for (const tag of IMPLICIT) {
      const v = tag.resolve(source, false, tag.tagName);
      if (v !== NOT_RESOLVED) return v as YamlScalar['value'];
    }
    return source;
  }

  #tagged(e: ScalarEvent, source: string): YamlScalar['value'] {
    const text = this.#text.slice(e.tagStart, e.tagEnd);
    const name = tagName(text);
    const tag = name === '' ? STRING_TAG : SCALAR_TAGS.find((t) => t.tagName === name);
    if (tag === undefined) {
      this.#fail(e.tagStart, `unknown tag ${text} (a policy file may use the core schema's: !!str, !!int, !!float, !!bool, !!null)`);
      return null;
    }
    const v = tag.resolve(source, true, tag.tagName);
    if (v === NOT_RESOLVED) {
      this.#fail(e.tagStart, `${text} "${source}" is not a valid ${tag.tagName.slice(tag.tagName.lastIndexOf(':') + 1)}`);
      return null;
    }
    return v as YamlScalar['value'];
  }

  #collectionTag(start: number, end: number, expected: string): void {
    if (start === -1) return;
    const text = this.#text.slice(start, end);
    const name = tagName(text);
    if (name !== '' && name !== expected) this.#fail(start, `unknown tag ${text} on a ${expected.endsWith('seq') ? 'sequence' : 'mapping'}`);
  }

  #atPop(): boolean {
    if (this.#events[this.#at]!.type !== EVENT_ID.POP) return false;
    this.#at++;
    return true;
  }

  #seq(offset: number): YamlSeq {
    const items: YamlNode[] = [];
    while (!this.#atPop()) items.push(this.node(items.at(-1)?.offset ?? offset));
    return { kind: 'seq', offset, items };
  }

  /**
   * Keys repeat by the `yaml` library's rule, which this parser replaced: scalar keys with
   * equal values (`1` and `'1'` differ); other keys never repeat. One set per mapping.
   */
  #map(offset: number): YamlMap {
    const items: YamlPair[] = [];
    const seen = new Set<unknown>();
    while (!this.#atPop()) {
      const key = this.node(offset);
      const value = this.node(key.offset);
      if (isScalar(key) && !Number.isNaN(key.value)) {
        if (seen.has(key.value)) this.#fail(key.offset, DUPLICATE_KEY);
        else seen.add(key.value);
      }
      items.push({ key, value });
    }
    return { kind: 'map', offset, items };
  }

  document(): YamlNode | null {
    let contents: YamlNode | null = null;
    let documents = 0;
    while (this.#at < this.#events.length) {
      const e = this.#events[this.#at++]!;
      if (e.type !== EVENT_ID.DOCUMENT) throw new Error(`YAML event ${e.type} where a document was expected`);
      documents++;
      const node = this.#atPop() ? null : this.node(0);
      if (node !== null && !this.#atPop()) throw new Error('YAML document holds more than one node');
      if (documents === 1) contents = node;
      else this.#fail(node?.offset ?? 0, 'a policy file holds one YAML document; this is a second (remove the "---" before it)');
    }
    return contents;
  }
}

function build(text: string, events: Event[]): ParsedYaml {
  const builder = new TreeBuilder(text, events);
  const contents = builder.document();
  return { contents, errors: builder.errors };
}

/** How many shorter prefixes parseYaml reads for what lies before a syntax error. */
const PREFIX_TRIES = 4;

/**
 * The document, or the first syntax error. js-yaml stops at that error; so that what the
 * text before it says wrong (a key given twice, an unknown anchor) is not lost, the whole
 * lines before the error are read again on their own, and their problems kept. A prefix
 * that is itself cut inside a construct (an unclosed `[`) is shortened by a line more, a
 * few times.
 */
export function parseYaml(text: string): ParsedYaml {
  try {
    return build(text, parseEvents(text, {}));
  } catch (err) {
    if (!(err instanceof YAMLException)) throw err;
    const syntax = { offset: err.mark?.position ?? 0, message: err.reason };
    let end = syntax.offset;
    for (let i = 0; i < PREFIX_TRIES && end > 0; i++) {
      end = Math.min(text.lastIndexOf('\n', syntax.offset - 1) + 1, text.lastIndexOf('\n', end - 2) + 1);
      try {
        return { contents: null, errors: [...build(text, parseEvents(text.slice(0, end), {})).errors, syntax] };
      } catch (again) {
        if (!(again instanceof YAMLException)) throw again;
        end = Math.min(end, again.mark?.position ?? end);
      }
    }
    return { contents: null, errors: [syntax] };
  }
}

/** What an alias-heavy value may expand to in toJS: a document of aliases of aliases doubles per level. */
const MAX_JS_NODES = 1_000_000;

/** A node as a plain JavaScript value (a request body, a fixture's attributes). */
export function toJS(node: YamlNode): unknown {
  let budget = MAX_JS_NODES;
  const visit = (n: YamlNode): unknown => {
    if (--budget < 0) throw new RangeError(`a value expands to more than ${MAX_JS_NODES.toLocaleString('en')} nodes through its aliases`);
    switch (n.kind) {
      case 'scalar':
        return n.value;
      case 'alias':
        return visit(n.target);
      case 'seq':
        return n.items.map(visit);
      case 'map': {
        const out: Record<string, unknown> = {};
        for (const { key, value } of n.items) {
          const k = String(visit(key));
          // defineProperty: a key "__proto__" is data, not the object's prototype.
          Object.defineProperty(out, k, { value: visit(value), enumerable: true, writable: true, configurable: true });
        }
        return out;
      }
    }
  };
  return visit(node);
}

/** Offsets to 1-based line and column. */
export class LineIndex {
  readonly #starts: number[] = [0];

  constructor(text: string) {
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) this.#starts.push(i + 1);
  }

  linePos(offset: number): { line: number; col: number } {
    let lo = 0;
    let hi = this.#starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: offset - this.#starts[lo]! + 1 };
  }
}
