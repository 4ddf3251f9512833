import { isKeyType, type KeyType } from '../keys/key-record.ts';
import { type ConnectDraft, connectDraft } from './connect-section.ts';
import { type RateLimitsDraft, rateLimitsDraft } from './rate-limits-section.ts';
import type { Position } from './source.ts';
import { isMap, isScalar, isSeq, type YamlNode } from './yaml-tree.ts';
import { scalarValue, type YamlWalker } from './yaml-walker.ts';

/**
 * First pass: each file's YAML AST to plain drafts that keep their positions. Shape
 * errors are reported here; cross-references (roles naming resources, lookups naming
 * resources) are checked once all files are read, in compile.ts.
 */
export interface RouteDraft {
  text: string;
  node: YamlNode;
  conditions: { kind: 'filter' | 'response' | 'none' } | { kind: 'lookup'; resource: string | null; id: string; node: YamlNode } | null;
  /** `serve: HANDLER`: Keygate answers the route itself (see served.ts). */
  serve: { name: string; node: YamlNode } | null;
  /** `shape: NAME` beside `serve`: the handler answers in that shape. */
  shape: { name: string; node: YamlNode } | null;
}

export interface ResourceDraft {
  name: string;
  w: YamlWalker;
  pos: Position;
  lookup: { text: string; node: YamlNode; ttlMs: number } | null;
  fields: Map<string, string[]> | null;
  actions: Array<{ name: string; node: YamlNode; routes: RouteDraft[] }>;
}

export interface RoleDraft {
  name: string;
  w: YamlWalker;
  pos: Position;
  permissions: Array<{ value: string; node: YamlNode }>;
  conditions: Array<{ attribute: string; node: YamlNode; values: Array<{ value: string; node: YamlNode }> }>;
}

interface KeyTypeDraft {
  type: KeyType;
  w: YamlWalker;
  node: YamlNode;
  roles: Array<{ value: string; node: YamlNode }>;
}

export interface FileDrafts {
  resources: ResourceDraft[];
  roles: RoleDraft[];
  keyTypes: KeyTypeDraft[];
  /** The file's walker, and its `keyTypes:` key when it has one (where completeness is reported). */
  w: YamlWalker;
  keyTypesNode: YamlNode | null;
  /** The file's `connect:` section (see connect-section.ts). */
  connect: ConnectDraft | null;
  /** The file's `rateLimits:` section (see rate-limits-section.ts). */
  rateLimits: RateLimitsDraft | null;
}

const NAME = /^[a-z][a-zA-Z0-9_-]*$/;
const DEFAULT_LOOKUP_TTL_MS = 10_000;

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  if (typeof value !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(value);
  if (m === null) return undefined;
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

function routeDraft(w: YamlWalker, node: YamlNode): RouteDraft | undefined {
  if (isScalar(node)) {
    const text = w.string(node, 'route');
    return text === undefined ? undefined : { text, node, conditions: null, serve: null, shape: null };
  }
  const entries = w.entries(node, 'route', ['route', 'conditions', 'serve', 'shape']);
  const routeEntry = entries.find((e) => e.key === 'route');
  if (routeEntry === undefined) {
    w.fail(node, 'route entry needs a "route" field ("METHOD /path")');
    return undefined;
  }
  const text = w.string(routeEntry.value, 'route', routeEntry.keyNode);
  if (text === undefined) return undefined;
  const condEntry = entries.find((e) => e.key === 'conditions');
  let conditions: RouteDraft['conditions'] = null;
  if (condEntry !== undefined) {
    const v = condEntry.value;
    if (isScalar(v)) {
      if (v.value === 'filter' || v.value === 'response' || v.value === 'none') conditions = { kind: v.value };
      else w.fail(v, 'conditions must be filter, response, none or { lookup: RESOURCE, id: SOURCE }');
    } else if (isMap(v)) {
      const ce = w.entries(v, 'conditions', ['lookup', 'id']);
      const idEntry = ce.find((e) => e.key === 'id');
      const lookupEntry = ce.find((e) => e.key === 'lookup');
      const id = idEntry === undefined ? undefined : w.string(idEntry.value, 'conditions.id', idEntry.keyNode);
      if (idEntry === undefined) w.fail(v, 'conditions: { lookup } needs an id (path.NAME, query.NAME, body.FIELD or response.FIELD)');
      const resource = lookupEntry === undefined ? null : (w.string(lookupEntry.value, 'conditions.lookup', lookupEntry.keyNode) ?? null);
      if (id !== undefined) conditions = { kind: 'lookup', resource, id, node: idEntry!.value ?? v };
    } else {
      w.fail(v ?? condEntry.keyNode, 'conditions must be filter, response, none or { lookup: RESOURCE, id: SOURCE }');
    }
  }
  const named = (key: 'serve' | 'shape'): { name: string; node: YamlNode } | null => {
    const e = entries.find((x) => x.key === key);
    if (e === undefined) return null;
    const name = w.string(e.value, key, e.keyNode);
    return name === undefined ? null : { name, node: e.value ?? e.keyNode };
  };
  return { text, node: routeEntry.value ?? node, conditions, serve: named('serve'), shape: named('shape') };
}

function resourceDraft(w: YamlWalker, name: string, keyNode: YamlNode, node: YamlNode | null): ResourceDraft {
  const draft: ResourceDraft = { name, w, pos: w.pos(keyNode), lookup: null, fields: null, actions: [] };
  if (!NAME.test(name)) w.fail(keyNode, `resource name "${name}" must match ${NAME.source}`);
  const entries = w.entries(node, `resource ${name}`, ['attributes', 'actions']);
  for (const e of entries) {
    if (e.key === 'attributes') {
      for (const a of w.entries(e.value, `resource ${name}.attributes`, ['lookup', 'fields', 'ttl'])) {
        if (a.key === 'lookup') {
          const text = w.string(a.value, 'attributes.lookup', a.keyNode);
          if (text !== undefined) draft.lookup = { text, node: a.value!, ttlMs: draft.lookup?.ttlMs ?? DEFAULT_LOOKUP_TTL_MS };
        } else if (a.key === 'ttl') {
          const ttl = parseDuration(scalarValue(a.value));
          if (ttl === undefined) w.fail(a.value ?? a.keyNode, 'attributes.ttl must be a duration like 500ms, 10s or 1m');
          else if (draft.lookup !== null) draft.lookup.ttlMs = ttl;
          else draft.lookup = { text: '', node: a.keyNode, ttlMs: ttl };
        } else {
          draft.fields = new Map();
          if (isMap(a.value)) {
            for (const f of w.entries(a.value, 'attributes.fields')) {
              const path = w.string(f.value, `attributes.fields.${f.key}`, f.keyNode);
              if (path !== undefined) draft.fields.set(f.key, path.split('.'));
            }
          } else {
            for (const f of w.strings(a.value, 'attributes.fields', a.keyNode)) draft.fields.set(f.value, [f.value]);
          }
        }
      }
      if (draft.lookup !== null && draft.lookup.text === '') {
        w.fail(e.keyNode, `resource ${name}: attributes.ttl is given but attributes.lookup is missing`);
        draft.lookup = null;
      }
    } else {
      for (const act of w.entries(e.value, `resource ${name}.actions`)) {
        if (!NAME.test(act.key)) w.fail(act.keyNode, `action name "${act.key}" must match ${NAME.source}`);
        const routes: RouteDraft[] = [];
        for (const item of w.items(act.value, `actions.${act.key}`, act.keyNode)) {
          const r = routeDraft(w, item);
          if (r !== undefined) routes.push(r);
        }
        draft.actions.push({ name: act.key, node: act.keyNode, routes });
      }
    }
  }
  if (!entries.some((e) => e.key === 'actions')) w.fail(keyNode, `resource ${name} has no actions`);
  return draft;
}

function roleDraft(w: YamlWalker, name: string, keyNode: YamlNode, node: YamlNode | null): RoleDraft {
  const draft: RoleDraft = { name, w, pos: w.pos(keyNode), permissions: [], conditions: [] };
  if (!NAME.test(name)) w.fail(keyNode, `role name "${name}" must match ${NAME.source}`);
  const entries = w.entries(node, `role ${name}`, ['permissions', 'conditions']);
  for (const e of entries) {
    if (e.key === 'permissions') draft.permissions = w.strings(e.value, `role ${name}.permissions`, e.keyNode);
    else {
      for (const c of w.entries(e.value, `role ${name}.conditions`)) {
        draft.conditions.push({ attribute: c.key, node: c.keyNode, values: w.strings(c.value, `condition ${c.key}`, c.keyNode) });
      }
    }
  }
  if (!entries.some((e) => e.key === 'permissions')) w.fail(keyNode, `role ${name} has no permissions`);
  return draft;
}

export function readDrafts(w: YamlWalker): FileDrafts {
  const out: FileDrafts = { resources: [], roles: [], keyTypes: [], w, keyTypesNode: null, connect: null, rateLimits: null };
  const contents = w.src.contents;
  // An empty file is almost always a truncated one (a half-written ConfigMap, an editor
  // crash); loading it as "no rules" would silently drop routes, so refuse it.
  if (contents === null) {
    w.fail(null, 'policy file is empty (a policy file holds at least `version: 1`)');
    return out;
  }
  for (const top of w.entries(contents, 'policy file', ['version', 'resources', 'roles', 'keyTypes', 'connect', 'rateLimits'])) {
    if (top.key === 'connect') {
      out.connect = connectDraft(w, top.value, top.keyNode);
    } else if (top.key === 'rateLimits') {
      out.rateLimits = rateLimitsDraft(w, top.value, top.keyNode);
    } else if (top.key === 'version') {
      if (scalarValue(top.value) !== 1) w.fail(top.value ?? top.keyNode, 'version must be 1');
    } else if (top.key === 'resources') {
      for (const r of w.entries(top.value, 'resources')) out.resources.push(resourceDraft(w, r.key, r.keyNode, r.value));
    } else if (top.key === 'roles') {
      for (const r of w.entries(top.value, 'roles')) out.roles.push(roleDraft(w, r.key, r.keyNode, r.value));
    } else {
      out.keyTypesNode = top.keyNode;
      for (const k of w.entries(top.value, 'keyTypes')) {
        if (!isKeyType(k.key)) {
          w.fail(k.keyNode, `unknown key type "${k.key}" (expected server, connect, scoped, operator or access-token)`);
          continue;
        }
        // No value at all is what a write cut right after `scoped:` leaves: "no roles" must
        // be said, as [].
        if (k.value === null || (isScalar(k.value) && k.value.value === null)) {
          w.fail(k.value ?? k.keyNode, `keyTypes.${k.key} has no value: list its roles, or write [] for no roles on purpose`);
          continue;
        }
        const roles = isSeq(k.value) && k.value.items.length === 0 ? [] : w.strings(k.value, `keyTypes.${k.key}`, k.keyNode);
        out.keyTypes.push({ type: k.key, w, node: k.keyNode, roles });
      }
    }
  }
  return out;
}
