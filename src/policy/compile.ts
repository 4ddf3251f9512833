import { createHash } from 'node:crypto';
import { KEY_TYPES, type KeyType } from '../keys/key-record.ts';
import { type ConnectSettings, DEFAULT_CONNECT } from './connect-section.ts';
import { type FileDrafts, type ResourceDraft, type RoleDraft, type RouteDraft, readDrafts } from './drafts.ts';
import { RouteMatcher } from './matcher.ts';
import type { CompiledPolicy, CompiledResource, CompiledRole, CompiledRoute, Enforcement, IdSource, RoleCondition, ValueTemplate } from './model.ts';
import { type PolicyIssue, PolicyLoadError } from './policy-error.ts';
import { rateLimitSettings } from './rate-limits-section.ts';
import { parseRouteTemplate, type RouteTemplate } from './route-template.ts';
import { isServedHandler, SERVED_HANDLERS, SERVED_PARAMS, SERVED_SHAPES } from './served.ts';
import { parseSource, type SourceFile } from './source.ts';
import type { YamlNode } from './yaml-tree.ts';
import { YamlWalker } from './yaml-walker.ts';

const KEY_FIELDS = new Set(['id', 'referenceId', 'type', 'name']);
const ID_SOURCE = /^(path|query|body|response)\.([A-Za-z_][A-Za-z0-9_]*)$/;

/** Shared by every resource that declares no fields: a map of its own cost each one 180 bytes, 8 % of a large policy's heap. */
const NO_FIELDS: ReadonlyMap<string, readonly string[]> = new Map();

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function parseValue(w: YamlWalker, text: string, node: YamlNode): ValueTemplate | undefined {
  const m = /^\{([^{}]*)\}$/.exec(text);
  if (m === null) {
    if (text.includes('{') || text.includes('}')) {
      w.fail(node, `condition value "${text}": a reference must be the whole value, e.g. "{key.referenceId}"`);
      return undefined;
    }
    if (text.includes(',')) {
      w.fail(node, `condition value "${text}" may not contain a comma (list the values instead)`);
      return undefined;
    }
    return { literal: text };
  }
  const ref = m[1]!;
  const field = ref.startsWith('key.') ? ref.slice(4) : '';
  if (!KEY_FIELDS.has(field)) {
    w.fail(node, `unresolvable reference {${ref}} (known: ${[...KEY_FIELDS].map((f) => `{key.${f}}`).join(', ')})`);
    return undefined;
  }
  return { keyField: field as 'id' | 'referenceId' | 'type' | 'name' };
}

function defaultEnforcement(action: string, template: RouteTemplate): RouteDraft['conditions'] {
  if (action === 'list' && !template.params.includes('id')) return { kind: 'filter' };
  if (template.params.includes('id')) return { kind: 'lookup', resource: null, id: 'path.id', node: null as unknown as YamlNode };
  return { kind: 'none' };
}

/** At most one file may say how the Connect flow finds devices. */
function connectSettings(drafts: readonly FileDrafts[]): ConnectSettings {
  const found = drafts.flatMap((d) => (d.connect === null ? [] : [d.connect]));
  for (const extra of found.slice(1)) extra.w.fail(extra.node, 'connect: is given in more than one policy file');
  return found[0]?.settings ?? DEFAULT_CONNECT;
}

class Compiler {
  readonly issues: PolicyIssue[] = [];
  readonly resources = new Map<string, Mutable<CompiledResource>>();
  readonly roles = new Map<string, CompiledRole>();
  readonly keyTypes = new Map<KeyType, string[]>();
  readonly matcher = new RouteMatcher<CompiledRoute>();
  readonly routeDrafts: Array<{ draft: RouteDraft; resource: ResourceDraft; action: string; route: Mutable<CompiledRoute> }> = [];

  run(all: FileDrafts[]): void {
    const resourceDrafts = all.flatMap((f) => f.resources);
    const roleDrafts = all.flatMap((f) => f.roles);
    for (const r of resourceDrafts) this.declareResource(r);
    for (const r of resourceDrafts) this.compileRoutes(r);
    for (const entry of this.routeDrafts) this.resolveEnforcement(entry);
    for (const r of roleDrafts) this.compileRole(r);
    for (const f of all) {
      for (const kt of f.keyTypes) {
        if (this.keyTypes.has(kt.type)) kt.w.fail(kt.node, `key type ${kt.type} is given roles twice`);
        const names: string[] = [];
        for (const role of kt.roles) {
          if (!this.roles.has(role.value)) kt.w.fail(role.node, `key type ${kt.type}: unknown role "${role.value}"`);
          names.push(role.value);
        }
        this.keyTypes.set(kt.type, names);
      }
    }
    this.checkComplete(all);
  }

  /**
   * Every key type the store can hold must be given its roles, or `[]` on purpose. A key
   * type left out is refused rather than read as "no roles": it is what a file cut short
   * by an unfinished write looks like, and loading it would refuse every such key (403)
   * until the rest of the file arrived. Reported once, at the first `keyTypes:` (or the
   * top of the first file when there is none).
   */
  checkComplete(all: FileDrafts[]): void {
    const missing = KEY_TYPES.filter((t) => !this.keyTypes.has(t));
    if (missing.length === 0) return;
    const anchor = all.find((f) => f.keyTypesNode !== null);
    const message = `keyTypes: no entry for ${missing.join(', ')}: give every key type the store can hold its roles, or [] for no roles on purpose (e.g. ${missing[0]}: [])`;
    if (anchor !== undefined) anchor.w.fail(anchor.keyTypesNode, message);
    else all[0]?.w.fail(null, message);
  }

  declareResource(d: ResourceDraft): void {
    const existing = this.resources.get(d.name);
    if (existing !== undefined) {
      this.issues.push({ ...d.pos, message: `resource ${d.name} is already declared at ${existing.position.file}:${existing.position.line}:${existing.position.col}` });
      return;
    }
    let lookup: CompiledResource['lookup'] = null;
    if (d.lookup !== null) {
      const t = parseRouteTemplate(d.lookup.text);
      if (typeof t === 'string') d.w.fail(d.lookup.node, t);
      else if (t.method !== 'GET') d.w.fail(d.lookup.node, `attributes.lookup must be a GET route, not ${t.method}`);
      else if (t.params.length !== 1 || t.params[0] !== 'id') d.w.fail(d.lookup.node, 'attributes.lookup must have exactly one parameter, {id}');
      else lookup = { template: t, ttlMs: d.lookup.ttlMs };
    }
    this.resources.set(d.name, {
      name: d.name,
      actions: new Map(),
      lookup,
      fields: d.fields ?? NO_FIELDS,
      fieldsDeclared: d.fields !== null,
      position: d.pos,
    });
  }

  compileRoutes(d: ResourceDraft): void {
    const resource = this.resources.get(d.name);
    if (resource === undefined || resource.position !== d.pos) return;
    const actions = resource.actions as Map<string, CompiledRoute[]>;
    for (const action of d.actions) {
      if (actions.has(action.name)) {
        d.w.fail(action.node, `resource ${d.name}: action ${action.name} is declared twice`);
        continue;
      }
      const routes: CompiledRoute[] = [];
      actions.set(action.name, routes);
      for (const rd of action.routes) {
        const template = parseRouteTemplate(rd.text);
        if (typeof template === 'string') {
          d.w.fail(rd.node, template);
          continue;
        }
        const route: Mutable<CompiledRoute> = {
          template,
          resource,
          action: action.name,
          permission: `${d.name}:${action.name}`,
          enforcement: { kind: 'none' },
          serve: null,
          shape: null,
          position: d.w.pos(rd.node),
        };
        if (!this.compileServe(d.w, rd, route)) continue;
        const clash = this.matcher.add(template, route);
        if (clash !== undefined) {
          const p = clash.position;
          d.w.fail(rd.node, `route ${template.text} conflicts with ${clash.template.text} (${clash.permission}) at ${p.file}:${p.line}:${p.col}`);
          continue;
        }
        routes.push(route);
        this.routeDrafts.push({ draft: rd, resource: d, action: action.name, route });
      }
    }
  }

  /** `serve:` and `shape:` of a route: a known handler, with the parameters it reads and a shape it speaks. */
  compileServe(w: YamlWalker, rd: RouteDraft, route: Mutable<CompiledRoute>): boolean {
    if (rd.serve === null) {
      if (rd.shape !== null) w.fail(rd.shape.node, 'shape is for routes Keygate serves: give serve: HANDLER too');
      return rd.shape === null;
    }
    const name = rd.serve.name;
    if (!isServedHandler(name)) {
      w.fail(rd.serve.node, `serve: unknown handler "${name}" (known: ${SERVED_HANDLERS.join(', ')})`);
      return false;
    }
    const missing = SERVED_PARAMS[name].filter((p) => !route.template.params.includes(p));
    if (missing.length > 0) {
      w.fail(rd.node, `serve: ${name} reads the route parameter${missing.length > 1 ? 's' : ''} ${missing.map((p) => `{${p}}`).join(', ')}, which ${route.template.text} lacks`);
      return false;
    }
    if (rd.shape !== null && !SERVED_SHAPES[name].includes(rd.shape.name)) {
      const shapes = SERVED_SHAPES[name];
      w.fail(rd.shape.node, `shape: ${name} has no shape "${rd.shape.name}" (${shapes.length === 0 ? 'it has only its own' : `known: ${shapes.join(', ')}`})`);
      return false;
    }
    if (rd.conditions !== null) {
      w.fail(rd.serve.node, `serve: a route Keygate serves enforces conditions in its handler; remove conditions: from ${route.template.text}`);
      return false;
    }
    route.serve = name;
    route.shape = rd.shape?.name ?? null;
    return true;
  }

  resolveEnforcement(entry: Compiler['routeDrafts'][number]): void {
    const { draft, resource, route } = entry;
    const w = resource.w;
    if (route.serve !== null) {
      route.enforcement = { kind: 'served' };
      return;
    }
    const spec = draft.conditions ?? defaultEnforcement(entry.action, route.template);
    if (spec === null || spec.kind !== 'lookup') {
      route.enforcement = { kind: spec?.kind ?? 'none' } as Enforcement;
      return;
    }
    const at = draft.conditions === null ? draft.node : spec.node;
    const m = ID_SOURCE.exec(spec.id);
    if (m === null) {
      w.fail(at, `conditions.id "${spec.id}" must be path.NAME, query.NAME, body.FIELD or response.FIELD`);
      return;
    }
    const id: IdSource = { from: m[1] as IdSource['from'], name: m[2]! };
    if (id.from === 'path' && !route.template.params.includes(id.name)) {
      w.fail(at, `conditions.id ${spec.id}: route ${route.template.text} has no {${id.name}} parameter`);
      return;
    }
    if (id.from === 'body' && (route.template.method === 'GET' || route.template.method === 'HEAD')) {
      w.fail(at, `conditions.id ${spec.id}: a ${route.template.method} request has no body to read`);
      return;
    }
    const targetName = spec.resource ?? resource.name;
    const target = this.resources.get(targetName);
    if (target === undefined) {
      w.fail(at, `conditions.lookup: unknown resource "${targetName}"`);
      return;
    }
    if (target.lookup === null) {
      // Only an error when someone needs it: a route with {id} on a resource without a lookup
      // simply cannot carry conditions.
      if (draft.conditions !== null) w.fail(at, `conditions: resource ${targetName} has no attributes.lookup to look ${spec.id} up with`);
      return;
    }
    route.enforcement = { kind: 'lookup', resource: target, id };
  }

  compileRole(d: RoleDraft): void {
    const w = d.w;
    if (this.roles.has(d.name)) {
      const p = this.roles.get(d.name)!.position;
      this.issues.push({ ...d.pos, message: `role ${d.name} is already declared at ${p.file}:${p.line}:${p.col}` });
      return;
    }
    let all = false;
    const grants = new Set<string>();
    const explicit: Array<{ permission: string; node: YamlNode }> = [];
    for (const perm of d.permissions) {
      if (perm.value === '*') {
        all = true;
        continue;
      }
      const m = /^([a-z][a-zA-Z0-9_-]*):(.+)$/.exec(perm.value);
      if (m === null) {
        w.fail(perm.node, `permission "${perm.value}" must be "*", "resource:*" or "resource:action[,action…]"`);
        continue;
      }
      const resource = this.resources.get(m[1]!);
      if (resource === undefined) {
        w.fail(perm.node, `permission "${perm.value}": unknown resource "${m[1]}"`);
        continue;
      }
      for (const action of m[2]!.split(',').map((a) => a.trim())) {
        if (action === '*') grants.add(`${resource.name}:*`);
        else if (!resource.actions.has(action)) {
          w.fail(perm.node, `permission "${perm.value}": resource ${resource.name} has no action "${action}" (it has ${[...resource.actions.keys()].join(', ')})`);
        } else {
          grants.add(`${resource.name}:${action}`);
          explicit.push({ permission: `${resource.name}:${action}`, node: perm.node });
        }
      }
    }
    const conditions: RoleCondition[] = [];
    for (const c of d.conditions) {
      const values: ValueTemplate[] = [];
      for (const v of c.values) {
        const parsed = parseValue(w, v.value, v.node);
        if (parsed !== undefined) values.push(parsed);
      }
      conditions.push({ attribute: c.attribute, values });
    }
    if (conditions.length > 0) {
      for (const g of explicit) this.checkEnforceable(w, d.name, g.permission, g.node, conditions);
    }
    this.roles.set(d.name, { name: d.name, all, grants, conditions, position: d.pos });
  }

  /** A conditioned grant must be provable on at least one route, and on attributes the resource has. */
  checkEnforceable(w: YamlWalker, role: string, permission: string, node: YamlNode, conditions: readonly RoleCondition[]): void {
    const [resourceName, action] = permission.split(':') as [string, string];
    const routes = this.resources.get(resourceName)?.actions.get(action) ?? [];
    if (routes.every((r) => r.enforcement.kind === 'none')) {
      w.fail(node, `role ${role} grants ${permission} with conditions, but no route of it can enforce conditions (unreachable rule): give the route conditions: filter, response or { lookup, id }`);
      return;
    }
    for (const r of routes) {
      const e = r.enforcement;
      const owner = e.kind === 'lookup' ? e.resource : e.kind === 'none' ? null : r.resource;
      if (owner === null || !owner.fieldsDeclared) continue;
      for (const c of conditions) {
        if (!owner.fields.has(c.attribute)) {
          w.fail(node, `role ${role}: condition on "${c.attribute}" cannot be checked on ${r.template.text}: resource ${owner.name} declares no such attribute`);
        }
      }
    }
  }
}

export interface PolicyText {
  readonly file: string;
  readonly text: string;
}

function sortIssues(issues: PolicyIssue[]): PolicyIssue[] {
  return issues.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col);
}

/** Validates and compiles policy sources; throws PolicyLoadError with every issue found. */
export function compilePolicy(texts: readonly PolicyText[], displayRoot?: string): CompiledPolicy {
  const issues: PolicyIssue[] = [];
  const drafts: FileDrafts[] = [];
  const hash = createHash('sha256');
  let unreadable = false;
  for (const { file, text } of texts) {
    hash.update(file).update('\0').update(text).update('\0');
    const parsed = parseSource(file, text, displayRoot);
    issues.push(...parsed.issues);
    // A file with a YAML error is not read for rules: what the parser kept of it is a
    // fragment, and checking the fragment (an "empty" file, key types "missing" below the
    // error) would report errors the file does not have.
    if (parsed.issues.length > 0) unreadable = true;
    else drafts.push(readDrafts(new YamlWalker(parsed.src as SourceFile, issues)));
  }
  // Nor is the policy checked as a whole (roles, key types, routes across files) without it.
  if (unreadable) throw new PolicyLoadError(sortIssues(issues));
  const compiler = new Compiler();
  compiler.run(drafts);
  issues.push(...compiler.issues);
  const connect = connectSettings(drafts);
  const rateLimits = rateLimitSettings(
    drafts.map((d) => d.rateLimits),
    compiler.roles,
    compiler.resources,
  );
  if (texts.length === 0) issues.push({ file: displayRoot ?? '.', line: 1, col: 1, message: 'no policy files (*.yaml) found' });
  if (issues.length > 0) throw new PolicyLoadError(sortIssues(issues));
  return {
    matcher: compiler.matcher,
    resources: compiler.resources,
    roles: compiler.roles,
    keyTypes: compiler.keyTypes,
    connect,
    rateLimits,
    files: texts.map((t) => t.file),
    version: hash.digest('hex').slice(0, 12),
    loadedAt: new Date().toISOString(),
  };
}
