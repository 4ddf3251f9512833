// The policy's `rateLimits:` section: its shape with file:line:col errors, names checked
// against the policy, the most specific rule for a key, and the shipped JSON Schema's copy.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Principal } from '../../src/keys/principal.ts';
import { keyRule } from '../../src/limits/rate-limiter.ts';
import { compilePolicy } from '../../src/policy/compile.ts';
import { formatIssue, PolicyLoadError } from '../../src/policy/policy-error.ts';
import { RATE_LIMITS_SHAPE } from '../../src/policy/rate-limits-section.ts';
import { jsonSchemaOf } from '../../src/policy/yaml-shape.ts';
import { POLICIES } from '../helpers/sidecar.ts';

const BASE =
  "version: 1\nresources:\n  devices:\n    actions:\n      list: [GET /v1/devices]\n  connections:\n    actions:\n      create: [POST /v1/connections]\nroles:\n  all:\n    permissions: ['*']\n  bulk:\n    permissions: ['devices:list']\n  burst:\n    permissions: ['devices:list']\nkeyTypes:\n  server: [all]\n  connect: []\n  scoped: []\n  operator: [all]\n  access-token: []\n";

function errorsOf(...texts: string[]): string {
  try {
    compilePolicy(
      texts.map((text, i) => ({ file: `p${i}.yaml`, text })),
      '/',
    );
  } catch (err) {
    if (err instanceof PolicyLoadError) return err.issues.map(formatIssue).join('\n');
    throw err;
  }
  return '';
}

const limitsOf = (section: string) => compilePolicy([{ file: 'p.yaml', text: `${BASE}rateLimits:\n${section}` }]).rateLimits;

function principal(over: Partial<Principal>): Principal {
  return { id: 'key_a', type: 'access-token', roles: [], ...over } as Principal;
}

describe('rateLimits: in a policy', () => {
  it('is absent by default: nothing to check', () => {
    expect(compilePolicy([{ file: 'p.yaml', text: BASE }]).rateLimits.any).toBe(false);
  });

  it('compiles each rule with its GCRA interval and its RateLimit-Policy item', () => {
    const l = limitsOf('  keyTypes:\n    connect: { limit: 60, window: 1m, per: client }\n  actions:\n    connections:create: { limit: 10, window: 1h, keyTypes: [connect] }\n');
    expect(l.any).toBe(true);
    expect(l.keyTypes.get('connect')).toEqual({ name: 'keyTypes.connect', limit: 60, windowMs: 60_000, intervalMs: 1000, per: 'client', policyItem: '"keyTypes.connect";q=60;w=60' });
    const action = l.actions.get('connections:create')!;
    expect([action.policyItem, action.per, [...action.keyTypes!]]).toEqual(['"actions.connections:create";q=10;w=3600', 'key', ['connect']]);
  });

  it.each([
    ['  keyTypes:\n    connect: { limit: 0, window: 1m }\n', /p0\.yaml:\d+:\d+ rateLimits\.keyTypes\.connect\.limit must be an integer from 1 to 1000000000, not 0/],
    ['  keyTypes:\n    connect: { limit: 5, window: 90 }\n', /rateLimits\.keyTypes\.connect\.window must be a string/],
    ['  keyTypes:\n    connect: { limit: 5, window: 500ms }\n', /window: "500ms" must be a whole number of seconds, minutes, hours or days/],
    ['  keyTypes:\n    connect: { limit: 5 }\n', /rateLimits\.keyTypes\.connect needs "window"/],
    ['  keyTypes:\n    root: { limit: 5, window: 1s }\n', /unknown value "root"/],
    ['  keyTypes:\n    connect: { limit: 5, window: 1s, per: ip }\n', /per: unknown value "ip" \(expected key, client\)/],
    ['  keyTypes:\n    connect: { limit: 5, window: 1s, burst: 9 }\n', /unknown field "burst"/],
    ['  keytypes:\n    connect: { limit: 5, window: 1s }\n', /rateLimits: unknown field "keytypes" \(did you mean "keyTypes"\?/],
    ['  roles:\n    ghost: { limit: 5, window: 1s }\n', /p0\.yaml:\d+:\d+ rateLimits\.roles: unknown role "ghost"/],
    ['  actions:\n    devices:delete: { limit: 5, window: 1s }\n', /rateLimits\.actions: no action "devices:delete"/],
    ['  actions:\n    devices: { limit: 5, window: 1s }\n', /must be a permission like connections:create/],
    ["  keys:\n    'key\"x': { limit: 5, window: 1s }\n", /must be a key id like/],
    ['  {}\n', /rateLimits is empty/],
  ])('refuses %j with file:line:col', (section, expected) => {
    expect(errorsOf(`${BASE}rateLimits:\n${section}`)).toMatch(expected);
  });

  it('may be given in one file only', () => {
    const r = 'version: 1\nrateLimits:\n  keyTypes:\n    scoped: { limit: 5, window: 1s }\n';
    expect(errorsOf(BASE, r, r)).toMatch(/p2\.yaml:2:1 rateLimits: is given in more than one policy file/);
  });
});

describe('the limit a key is counted against: key over role over key type', () => {
  const l = limitsOf(
    '  keyTypes:\n    access-token: { limit: 10, window: 1s }\n  roles:\n    bulk: { limit: 100, window: 1s }\n    burst: { limit: 1000, window: 1m }\n  keys:\n    key_special: { limit: 5, window: 1s }\n',
  );
  it.each([
    ['its key id', principal({ id: 'key_special', roles: ['bulk'] }), 'keys.key_special'],
    ['the most generous of its roles (100/s over 1000/min)', principal({ roles: ['burst', 'bulk'] }), 'roles.bulk'],
    ['its one role', principal({ roles: ['burst'] }), 'roles.burst'],
    ['its key type', principal({ roles: ['all'] }), 'keyTypes.access-token'],
    ['none (a key type without one)', principal({ type: 'server' }), undefined],
  ])('%s', (_what, p, name) => {
    expect(keyRule(l, p)?.name).toBe(name);
  });
});

describe('the shipped policy and its JSON Schema', () => {
  it('policies/texture.yaml limits link creation by connect keys per client, under a ceiling per key', () => {
    const l = compilePolicy([{ file: 'texture.yaml', text: readFileSync(join(POLICIES, 'texture.yaml'), 'utf8') }]).rateLimits;
    expect(l.actions.get('connections:create')).toMatchObject({ per: 'client', keyTypes: new Set(['connect']) });
    expect(l.keyTypes.get('connect')).toMatchObject({ per: 'key' });
    expect(l.keyTypes.get('scoped')).toBeUndefined();
  });

  it('keygate-policy.schema.json describes rateLimits exactly as the reader reads it', () => {
    const schema = JSON.parse(readFileSync(join(POLICIES, 'keygate-policy.schema.json'), 'utf8'));
    expect(schema.properties.rateLimits).toEqual(jsonSchemaOf(RATE_LIMITS_SHAPE));
  });
});
