import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../src/policy/compile.ts';
import { formatIssue, PolicyLoadError } from '../../src/policy/policy-error.ts';
import { loadPolicy } from '../../src/policy/load.ts';
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
    ['conflicting routes', BASE + "  other:\n    actions:\n      read: ['GET /v1/devices/{deviceId}']\n", /p\.yaml:9:14 route GET \/v1\/devices\/\{deviceId\} conflicts with GET \/v1\/devices\/\{id\} \(devices:read\) at p\.yaml:6:14/],
    ['conditions that no route can enforce (unreachable rule)', "resources:\n  b:\n    actions:\n      run: [POST /v1/b]\nroles:\n  r:\n    permissions: ['b:run']\n    conditions: { referenceId: x }\n", /p\.yaml:7:19 role r grants b:run with conditions, but no route of it can enforce conditions \(unreachable rule\)/],
    ['condition on an attribute the resource does not have', BASE + 'roles:\n  r:\n    permissions: [devices:read]\n    conditions: { factoryId: f1 }\n', /condition on "factoryId" cannot be checked on GET \/v1\/devices\/\{id\}/],
    ['lookup id from a missing path parameter', "resources:\n  d:\n    attributes: { lookup: 'GET /d/{id}' }\n    actions:\n      read:\n        - route: GET /d/{x}\n          conditions: { lookup: d, id: path.id }\n", /p\.yaml:7:40 conditions\.id path\.id: route GET \/d\/\{x\} has no \{id\} parameter/],
    ['duplicate YAML key', 'resources:\n  d:\n    actions: {}\n  d:\n    actions: {}\n', /p\.yaml:4:3 YAML: Map keys must be unique/],
    ['YAML syntax error', 'resources: [\n', /p\.yaml:\d+:\d+ YAML:/],
  ])('%s', (_name, text, pattern) => {
    const errors = errorsOf(text);
    expect(errors.join('\n')).toMatch(pattern);
  });

  it('reports every problem at once', () => {
    const errors = errorsOf('resources:\n  d:\n    actions:\n      list: [FETCH /a, GET /b//c]\nroles:\n  r:\n    permissions: [x:y]\n');
    expect(errors.length).toBe(3);
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
