import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../src/policy/compile.ts';
import { loadPolicy } from '../../src/policy/load.ts';
import type { CompiledPolicy } from '../../src/policy/model.ts';
import { formatIssue, PolicyLoadError } from '../../src/policy/policy-error.ts';
import { POLICIES } from '../helpers/sidecar.ts';

function errorsOf(text: string, extra: Array<{ file: string; text: string }> = []): string[] {
  try {
    compilePolicy([{ file: 'p.yaml', text }, ...extra], '/');
  } catch (err) {
    if (err instanceof PolicyLoadError) return err.issues.map(formatIssue);
    throw err;
  }
  return [];
}

/** Every key type, with no roles on purpose. */
const NO_ROLES = 'keyTypes:\n  server: []\n  connect: []\n  scoped: []\n  operator: []\n  access-token: []\n';

const BASE = `resources:
  devices:
    attributes: { lookup: 'GET /v1/devices/{id}', fields: [referenceId] }
    actions:
      list: [GET /v1/devices]
      read: ['GET /v1/devices/{id}']
`;

describe('policy validation names file:line:col and the reason', () => {
  it('the shipped policies are valid', () => {
    expect(() => loadPolicy(POLICIES)).not.toThrow();
  });

  it.each([
    ['unknown top-level field', 'resourcez: {}\n', /p\.yaml:1:1 policy file: unknown field "resourcez"/],
    ['unknown resource field', 'resources:\n  devices:\n    actionz: {}\n', /p\.yaml:3:5 resource devices: unknown field "actionz"/],
    ['bad method', 'resources:\n  d:\n    actions:\n      list: [FETCH /v1/d]\n', /p\.yaml:4:14 route "FETCH \/v1\/d": unknown method FETCH/],
    ['bad template', "resources:\n  d:\n    actions:\n      read: ['GET /v1/d/{id']\n", /p\.yaml:4:14 .*parameter name \{id must be an identifier|characters that are not allowed/],
    ['empty segment', "resources:\n  d:\n    actions:\n      read: ['GET /v1//d']\n", /p\.yaml:4:14 .*empty path segment/],
    ['unknown resource in a role', BASE + 'roles:\n  r:\n    permissions: [sites:list]\n', /p\.yaml:9:19 permission "sites:list": unknown resource "sites"/],
    ['unknown action in a role', BASE + 'roles:\n  r:\n    permissions: ["devices:list,explode"]\n', /p\.yaml:9:19 .*resource devices has no action "explode" \(it has list, read\)/],
    ['unresolvable reference', BASE + 'roles:\n  r:\n    permissions: [devices:list]\n    conditions: { referenceId: "{key.owner}" }\n', /p\.yaml:10:32 unresolvable reference \{key\.owner\}/],
    ['unknown role for a key type', BASE + 'keyTypes:\n  scoped: [ghost]\n', /p\.yaml:8:12 key type scoped: unknown role "ghost"/],
    ['unknown key type', BASE + 'keyTypes:\n  superuser: []\n', /p\.yaml:8:3 unknown key type "superuser"/],
    [
      'conflicting routes',
      BASE + "  other:\n    actions:\n      read: ['GET /v1/devices/{deviceId}']\n",
      /p\.yaml:9:14 route GET \/v1\/devices\/\{deviceId\} conflicts with GET \/v1\/devices\/\{id\} \(devices:read\) at p\.yaml:6:14/,
    ],
    [
      'conditions that no route can enforce (unreachable rule)',
      "resources:\n  b:\n    actions:\n      run: [POST /v1/b]\nroles:\n  r:\n    permissions: ['b:run']\n    conditions: { referenceId: x }\n",
      /p\.yaml:7:19 role r grants b:run with conditions, but no route of it can enforce conditions \(unreachable rule\)/,
    ],
    [
      'condition on an attribute the resource does not have',
      BASE + 'roles:\n  r:\n    permissions: [devices:read]\n    conditions: { factoryId: f1 }\n',
      /condition on "factoryId" cannot be checked on GET \/v1\/devices\/\{id\}/,
    ],
    [
      'lookup id from a missing path parameter',
      "resources:\n  d:\n    attributes: { lookup: 'GET /d/{id}' }\n    actions:\n      read:\n        - route: GET /d/{x}\n          conditions: { lookup: d, id: path.id }\n",
      /p\.yaml:7:40 conditions\.id path\.id: route GET \/d\/\{x\} has no \{id\} parameter/,
    ],
    ['duplicate YAML key', 'resources:\n  d:\n    actions: {}\n  d:\n    actions: {}\n', /p\.yaml:4:3 YAML: Map keys must be unique/],
    ['YAML syntax error', 'resources: [\n', /p\.yaml:\d+:\d+ YAML:/],
  ])('%s', (_name, text, pattern) => {
    const errors = errorsOf(text);
    expect(errors.join('\n')).toMatch(pattern);
  });

  it('reports every problem at once', () => {
    const errors = errorsOf('resources:\n  d:\n    actions:\n      list: [FETCH /a, GET /b//c]\nroles:\n  r:\n    permissions: [x:y]\n' + NO_ROLES);
    expect(errors.length).toBe(3);
  });

  // A policy must say what every key type the store can hold may do: a file cut short by
  // an unfinished write (no roles, no keyTypes) must not load as "refuse everyone".
  it.each([
    ['no keyTypes at all (a file cut before roles:)', BASE, /p\.yaml:1:1 keyTypes: no entry for server, connect, scoped, operator, access-token: .*or \[\] for no roles on purpose/],
    ['some key types left out', BASE + 'keyTypes:\n  server: []\n  scoped: []\n', /p\.yaml:7:1 keyTypes: no entry for connect, operator, access-token/],
    [
      'a key type with no value (a write cut after the colon)',
      BASE + NO_ROLES.replace('access-token: []', 'access-token:'),
      /p\.yaml:\d+:\d+ keyTypes\.access-token has no value: list its roles, or write \[\] for no roles on purpose/,
    ],
    ['a key type given null', BASE + NO_ROLES.replace('scoped: []', 'scoped: null'), /keyTypes\.scoped has no value/],
  ])('refuses an incomplete policy: %s', (_name, text, pattern) => {
    expect(errorsOf(text).join('\n')).toMatch(pattern);
  });

  // The shipped files end with keyTypes, so a file cut at any byte either fails to load or
  // is the whole policy (a cut inside the last comment): no torn version loads as another.
  it.each([join(POLICIES, 'texture.yaml'), join(POLICIES, 'examples', 'evrythng.yaml')])('no prefix of %s loads as a different policy', (file) => {
    const text = readFileSync(file, 'utf8');
    const shape = (p: CompiledPolicy): string =>
      JSON.stringify({
        roles: [...p.roles].map(([n, r]) => [n, r.all, [...r.grants], r.conditions]),
        keyTypes: [...p.keyTypes],
        routes: [...p.resources].map(([n, r]) => [n, [...r.actions].map(([a, rs]) => [a, rs.map((x) => `${x.template.text} ${x.enforcement.kind}`)])]),
      });
    const whole = shape(compilePolicy([{ file: 'p.yaml', text }]));
    const different: string[] = [];
    for (let cut = 0; cut < text.length; cut++) {
      let compiled: CompiledPolicy;
      try {
        compiled = compilePolicy([{ file: 'p.yaml', text: text.slice(0, cut) }]);
      } catch {
        continue;
      }
      if (shape(compiled) !== whole) different.push(JSON.stringify(text.slice(Math.max(0, cut - 40), cut)));
    }
    expect(different).toEqual([]);
  });

  it('every key type given [] on purpose is complete, across files too', () => {
    expect(errorsOf(BASE + NO_ROLES)).toEqual([]);
    expect(errorsOf(BASE + 'keyTypes:\n  server: []\n  connect: []\n', [{ file: 'q.yaml', text: 'keyTypes:\n  scoped: []\n  operator: []\n  access-token: []\n' }])).toEqual([]);
  });

  it('names the other file when two files declare the same resource', () => {
    const errors = errorsOf(BASE, [{ file: 'q.yaml', text: BASE }]);
    expect(errors.join('\n')).toMatch(/q\.yaml:2:3 resource devices is already declared at p\.yaml:2:3/);
  });

  it('compiles the shipped Texture routes to the expected permissions and enforcement', () => {
    const p = loadPolicy(POLICIES);
    const m = (method: 'GET' | 'POST', path: string) => p.matcher.match(method, path.slice(1).split('/'));
    expect(m('GET', '/v1/devices')?.value.enforcement.kind).toBe('filter');
    expect(m('GET', '/v1/devices/x/alerts')?.value.permission).toBe('devices:read');
    expect(m('POST', '/v1/commands/t/a')?.value.enforcement).toMatchObject({ kind: 'lookup', id: { from: 'body', name: 'deviceId' } });
    expect(m('GET', '/v1/devices/x/unknown')).toBeUndefined();
  });
});
