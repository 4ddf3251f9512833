// Routes Keygate serves itself: `serve:` names a known handler, checked at load with
// file:line:col; authorization is as for any route, and the conditions of a conditioned
// grant are handed to the handler rather than refused as unprovable.
import { describe, expect, it } from 'vitest';
import { KeygateError } from '../../src/errors/keygate-error.ts';
import { testPrincipal } from '../../src/keys/principal.ts';
import { decide } from '../../src/pipeline/authorize.ts';
import { canonicalize } from '../../src/pipeline/canonical-path.ts';
import { compilePolicy } from '../../src/policy/compile.ts';
import { formatIssue, PolicyLoadError } from '../../src/policy/policy-error.ts';
import { SERVED_HANDLERS } from '../../src/policy/served.ts';

const KEY_TYPES = 'keyTypes:\n  server: [all]\n  connect: []\n  scoped: []\n  operator: [all]\n  access-token: []\n';

function policy(resources: string, roles = ''): string {
  return `version: 1\nresources:\n${resources}roles:\n  all:\n    permissions: ['*']\n${roles}${KEY_TYPES}`;
}

const API_KEYS = `  api-keys:
    actions:
      list: [{ route: GET /v1/api-keys, serve: api-keys.list }]
      read: [{ route: 'GET /v1/api-keys/{id}', serve: api-keys.read }]
      create: [{ route: POST /v1/api-keys, serve: api-keys.create }]
  tokens:
    actions:
      create: [{ route: POST /accessTokens, serve: api-keys.create, shape: evrythng-access-token }]
  devices:
    actions:
      list: [GET /v1/devices]
`;

function errorsOf(text: string): string[] {
  try {
    compilePolicy([{ file: 'p.yaml', text }], '/');
  } catch (err) {
    if (err instanceof PolicyLoadError) return err.issues.map(formatIssue);
    throw err;
  }
  return [];
}

describe('serve: in a policy', () => {
  it('compiles a served route with its handler and shape; forwarded routes have none', () => {
    const p = compilePolicy([{ file: 'p.yaml', text: policy(API_KEYS) }]);
    const route = (path: string, method: 'GET' | 'POST' = 'GET') => p.matcher.match(method, canonicalize(path).segments)!.value;
    expect(route('/v1/api-keys')).toMatchObject({ serve: 'api-keys.list', shape: null, enforcement: { kind: 'served' }, permission: 'api-keys:list' });
    expect(route('/accessTokens', 'POST')).toMatchObject({ serve: 'api-keys.create', shape: 'evrythng-access-token' });
    expect(route('/v1/devices')).toMatchObject({ serve: null, shape: null });
  });

  it.each([
    ['an unknown handler', '      list: [{ route: GET /v1/x, serve: api-keys.lst }]\n', /p\.yaml:5:41 serve: unknown handler "api-keys\.lst" \(known: api-keys\.list,/],
    ['a handler without its {id}', '      read: [{ route: GET /v1/x, serve: api-keys.read }]\n', /p\.yaml:5:23 serve: api-keys\.read reads the route parameter \{id\}, which GET \/v1\/x lacks/],
    [
      'a shape the handler lacks',
      '      list: [{ route: GET /v1/x, serve: api-keys.events, shape: evrythng-access-token }]\n',
      /serve: api-keys\.events|shape: api-keys\.list has no shape|has no shape "evrythng-access-token" \(it has only its own\)/,
    ],
    ['a shape without serve', '      list: [{ route: GET /v1/x, shape: evrythng-access-token }]\n', /p\.yaml:5:\d+ shape is for routes Keygate serves/],
    ['conditions beside serve', '      list: [{ route: GET /v1/x, serve: api-keys.list, conditions: filter }]\n', /serve: a route Keygate serves enforces conditions in its handler/],
    ['an empty serve', "      list: [{ route: GET /v1/x, serve: '' }]\n", /serve must be a non-empty string/],
  ])('refuses %s with file:line:col', (_what, action, expected) => {
    const errors = errorsOf(policy(`  x:\n    actions:\n${action}`));
    expect(errors.join('\n')).toMatch(expected);
  });

  it('hands a conditioned grant to the handler instead of refusing it as unprovable', () => {
    const text = policy(API_KEYS, "  minter:\n    permissions: ['api-keys:create,list', 'devices:list']\n");
    const p = compilePolicy([{ file: 'p.yaml', text }]);
    const token = testPrincipal({ type: 'access-token', roles: ['minter'], conditions: { factoryId: ['f1'] } });
    const d = decide(p, token, 'POST', canonicalize('/v1/api-keys'));
    expect(d).not.toBeInstanceOf(KeygateError);
    expect(d).toMatchObject({ route: { serve: 'api-keys.create' }, conditions: [{ attribute: 'factoryId', values: ['f1'] }] });
    // Permissions still decide: no grant of api-keys:read → 403, as for any route.
    expect((decide(p, token, 'GET', canonicalize('/v1/api-keys/key_x')) as KeygateError).code).toBe('ACTION_NOT_ALLOWED');
    const server = testPrincipal({ type: 'server' });
    expect(decide(p, server, 'GET', canonicalize('/v1/api-keys/key_x'))).toMatchObject({ conditions: null, params: { id: 'key_x' } });
  });

  it('knows every handler name the policy schema offers', async () => {
    const { readFileSync } = await import('node:fs');
    const schema = JSON.parse(readFileSync(new URL('../../policies/keygate-policy.schema.json', import.meta.url), 'utf8'));
    expect(schema.definitions.servedHandler.enum).toEqual([...SERVED_HANDLERS]);
  });
});
