import { KEY_TYPES, type KeyType } from '../keys/key-record.ts';
import type { CompiledResource, CompiledRole } from './model.ts';
import { type Infer, integer, list, map, nodeOf, object, ShapeReader, string } from './yaml-shape.ts';
import type { YamlNode } from './yaml-tree.ts';
import type { YamlWalker } from './yaml-walker.ts';

/**
 * The policy's `rateLimits:` section. A request is counted against at most two limits:
 * - its key's limit, the most specific that names it: `keys.<id>` over `roles.<role>` over
 *   `keyTypes.<type>` (among several roles of one key with a limit, the most generous, as
 *   roles add up: a role given to a key for its volume must not be undone by another);
 * - its action's limit (`actions.<resource:action>`, optionally for some key types only),
 *   counted apart from the first, for an action dearer than the rest (creating Connect links).
 * `per: client` counts per key and client address instead of per key: a public (connect)
 * key is shared by every user of an app, and one abuser must not spend it for all of them.
 */
export interface RateLimitRule {
  /** The policy path (`keyTypes.connect`): the quota policy's name in the RateLimit headers. */
  readonly name: string;
  readonly limit: number;
  readonly windowMs: number;
  /** GCRA's emission interval: one request per `intervalMs` on average. */
  readonly intervalMs: number;
  readonly per: 'key' | 'client';
  /** The rule as one `RateLimit-Policy` item (draft-ietf-httpapi-ratelimit-headers-12 §3): `"name";q=60;w=60`, built once. */
  readonly policyItem: string;
}

export interface ActionRateLimit extends RateLimitRule {
  /** The key types it applies to; null: every key type. */
  readonly keyTypes: ReadonlySet<KeyType> | null;
}

export interface RateLimitSettings {
  /** false when the section is absent or empty: the proxy's one check per request. */
  readonly any: boolean;
  readonly keyTypes: ReadonlyMap<KeyType, RateLimitRule>;
  readonly roles: ReadonlyMap<string, RateLimitRule>;
  readonly keys: ReadonlyMap<string, RateLimitRule>;
  /** By permission (`connections:create`). */
  readonly actions: ReadonlyMap<string, ActionRateLimit>;
}

const NO_RATE_LIMITS: RateLimitSettings = Object.freeze({ any: false, keyTypes: new Map(), roles: new Map(), keys: new Map(), actions: new Map() });

const WINDOW = /^[1-9]\d*(s|m|h|d)$/;
const UNIT_S = { s: 1, m: 60, h: 3600, d: 86_400 } as const;

const RULE_FIELDS = {
  limit: integer({ minimum: 1, maximum: 1_000_000_000, description: 'requests allowed per window (also the largest burst)' }),
  window: string({ pattern: WINDOW, patternHint: 'a whole number of seconds, minutes, hours or days, like 1s, 1m or 1h', description: 'the window the limit is counted over' }),
  per: string({ enum: ['key', 'client'] as const, description: '`key` (default): one budget per key; `client`: one per key and client address' }),
};
const RULE = object(RULE_FIELDS, { required: ['limit', 'window'] });
const ACTION_RULE = object(
  { ...RULE_FIELDS, keyTypes: list(string({ enum: KEY_TYPES }), { minItems: 1, description: 'only keys of these types (default: every key type)' }) },
  { required: ['limit', 'window'] },
);

export const RATE_LIMITS_SHAPE = object(
  {
    keyTypes: map(RULE, { keys: string({ enum: KEY_TYPES }) }),
    roles: map(RULE),
    keys: map(RULE, { keys: string({ pattern: /^[A-Za-z0-9_-]+$/, patternHint: 'a key id like key_0123456789abcdef' }) }),
    actions: map(ACTION_RULE, { keys: string({ pattern: /^[a-z][a-zA-Z0-9_-]*:[a-z][a-zA-Z0-9_-]*$/, patternHint: 'a permission like connections:create' }) }),
  },
  {
    minProperties: 1,
    emptyHint: 'give keyTypes, roles, keys or actions, or leave rateLimits out',
    description: "Rate limits (429 RATE_LIMITED): a key counts against keys.<id>, else its roles' most generous, else its key type's; and, apart, against its action's (actions.<resource:action>)",
  },
);

type RuleDoc = Infer<typeof RULE>;
type SectionDoc = Infer<typeof RATE_LIMITS_SHAPE>;

export interface RateLimitsDraft {
  readonly w: YamlWalker;
  readonly node: YamlNode;
  readonly doc: SectionDoc;
}

export function rateLimitsDraft(w: YamlWalker, node: YamlNode | null, keyNode: YamlNode): RateLimitsDraft | null {
  const doc = new ShapeReader(w).read(node, RATE_LIMITS_SHAPE, 'rateLimits');
  return doc === undefined ? null : { w, node: keyNode, doc };
}

/** undefined when a field was refused (the reader has said why, and the policy will not load). */
function compileRule(name: string, doc: RuleDoc): RateLimitRule | undefined {
  const m = doc.window === undefined || doc.limit === undefined ? null : WINDOW.exec(doc.window);
  if (m === null) return undefined;
  const windowS = Number(doc.window.slice(0, -1)) * UNIT_S[m[1] as keyof typeof UNIT_S];
  const windowMs = windowS * 1000;
  return { name, limit: doc.limit, windowMs, intervalMs: windowMs / doc.limit, per: doc.per ?? 'key', policyItem: `"${name}";q=${doc.limit};w=${windowS}` };
}

/** The section of the one file that has it, with its role and action names checked against the policy. */
export function rateLimitSettings(drafts: readonly (RateLimitsDraft | null)[], roles: ReadonlyMap<string, CompiledRole>, resources: ReadonlyMap<string, CompiledResource>): RateLimitSettings {
  const found = drafts.filter((d): d is RateLimitsDraft => d !== null);
  for (const extra of found.slice(1)) extra.w.fail(extra.node, 'rateLimits: is given in more than one policy file');
  const first = found[0];
  if (first === undefined) return NO_RATE_LIMITS;
  const { w, doc } = first;
  const keyTypes = new Map<KeyType, RateLimitRule>();
  const roleRules = new Map<string, RateLimitRule>();
  const keys = new Map<string, RateLimitRule>();
  const actions = new Map<string, ActionRateLimit>();
  const add = <K>(to: Map<K, RateLimitRule>, key: K, name: string, rule: RuleDoc): void => {
    const compiled = compileRule(name, rule);
    if (compiled !== undefined) to.set(key, compiled);
  };
  for (const [type, rule] of Object.entries(doc.keyTypes ?? {})) add(keyTypes, type as KeyType, `keyTypes.${type}`, rule);
  for (const [role, rule] of Object.entries(doc.roles ?? {})) {
    if (!roles.has(role)) w.fail(nodeOf(rule), `rateLimits.roles: unknown role "${role}"`);
    else add(roleRules, role, `roles.${role}`, rule);
  }
  for (const [id, rule] of Object.entries(doc.keys ?? {})) add(keys, id, `keys.${id}`, rule);
  for (const [permission, rule] of Object.entries(doc.actions ?? {})) {
    const [resource, action] = permission.split(':') as [string, string];
    if (resources.get(resource)?.actions.has(action) !== true) {
      w.fail(nodeOf(rule), `rateLimits.actions: no action "${permission}" in the policy's resources`);
      continue;
    }
    const compiled = compileRule(`actions.${permission}`, rule);
    if (compiled !== undefined) actions.set(permission, { ...compiled, keyTypes: rule.keyTypes === undefined ? null : new Set(rule.keyTypes) });
  }
  const any = keyTypes.size + roleRules.size + keys.size + actions.size > 0;
  return { any, keyTypes, roles: roleRules, keys, actions };
}
