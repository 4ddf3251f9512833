import { spawnSync } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, POLICIES, ROOT, tempDir } from '../helpers/sidecar.ts';

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function policyCopy(): string {
  const dir = tempDir('kg-policy-');
  copyFileSync(join(POLICIES, 'texture.yaml'), join(dir, 'texture.yaml'));
  return dir;
}

describe('keygate policy check', () => {
  it('accepts the shipped policies', () => {
    const r = cli('policy', 'check', 'policies');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^ok: 1 file\(s\), 9 resources/);
  });

  it('warns (on stderr, still exit 0) of a device step without a confirmation, and not of one with it', () => {
    const dir = policyCopy();
    const step = "  deviceStep: 'https://b.example/step?r={referenceId}&back={returnUrl}&state={state}'\n";
    writeFileSync(join(dir, 'connect.yaml'), `version: 1\nconnect:\n${step}`);
    const open = cli('policy', 'check', dir);
    expect(open.status).toBe(0);
    expect(open.stderr).toMatch(/^warning: connect\.deviceStep has no connect\.deviceStepConfirm: a step URL handed to someone else/);
    writeFileSync(join(dir, 'connect.yaml'), `version: 1\nconnect:\n${step}  deviceStepConfirm: /step/confirm\n`);
    const confirmed = cli('policy', 'check', dir);
    expect(confirmed.status).toBe(0);
    expect(confirmed.stderr).toBe('');
  });

  it('prints every error with file:line:col and exits 1', () => {
    const dir = tempDir('kg-bad-');
    writeFileSync(
      join(dir, 'a.yaml'),
      'resources:\n  d:\n    actions:\n      list: [FETCH /a]\n      read: ["GET /a/{1x}"]\nroles:\n  r:\n    permissions: [nope:read]\n    conditions: { x: "{key.secret}" }\n',
    );
    const r = cli('policy', 'check', dir);
    expect(r.status).toBe(1);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toContain('3 error(s)'.replace('3', String(lines.length - 1)));
    expect(r.stdout).toMatch(/a\.yaml:4:14 route "FETCH \/a": unknown method FETCH/);
    expect(r.stdout).toMatch(/a\.yaml:5:14 route "GET \/a\/\{1x\}": parameter name \{1x\} must be an identifier/);
    expect(r.stdout).toMatch(/a\.yaml:8:19 permission "nope:read": unknown resource "nope"/);
    expect(r.stdout).toMatch(/a\.yaml:9:22 unresolvable reference \{key\.secret\}/);
  });
});

describe('keygate policy check on a YAML syntax error', () => {
  it.each([
    ['version: [1', '1:12'],
    ['roles:\n  r:\n    permissions: [devices:list', '3:31'],
    ["version: 1\nresources: 'unclosed", '2:21'],
    ['version: 1\nroles:\n\tr: {}', '3:1'],
  ])('%j: only the syntax error, at its position, not the rules the fragment lacks', (text, at) => {
    const dir = policyCopy();
    writeFileSync(join(dir, 'broken.yaml'), text);
    const r = cli('policy', 'check', dir);
    expect(r.status).toBe(1);
    const errors = r.stdout.trim().split('\n').slice(0, -1);
    expect(errors, r.stdout).toHaveLength(1);
    expect(errors[0]).toMatch(new RegExp(`broken\\.yaml:${at} YAML: `));
    expect(r.stdout).not.toMatch(/policy file is empty|keyTypes: no entry/);
  });
});

describe('keygate policy test', () => {
  it('passes the shipped test files (every row of the key table)', () => {
    const r = cli('policy', 'test', 'policies');
    expect(r.stdout).toMatch(/policy tests: (\d+) passed, 0 failed/);
    expect(Number(/(\d+) passed/.exec(r.stdout)![1])).toBeGreaterThanOrEqual(30);
    expect(r.status).toBe(0);
  });

  it('a failed case exits 4 and names the case and the rule that decided', () => {
    const dir = policyCopy();
    writeFileSync(
      join(dir, 'wrong.test.yaml'),
      [
        'fixtures: { devices: { dev_bob_1: { referenceId: bob } } }',
        'tests:',
        '  - name: alice expects bob’s device (wrong on purpose)',
        '    key: { type: scoped, referenceId: alice }',
        '    request: { method: GET, path: /v1/devices/dev_bob_1 }',
        '    expect: { decision: allow }',
        '  - name: the filter is alice',
        '    key: { type: scoped, referenceId: alice }',
        '    request: { method: GET, path: /v1/devices }',
        '    expect: { upstream: { query: { referenceId: bob } } }',
        '',
      ].join('\n'),
    );
    const r = cli('policy', 'test', dir);
    expect(r.status).toBe(4);
    expect(r.stdout).toContain('FAIL wrong.test.yaml › alice expects bob’s device (wrong on purpose)');
    expect(r.stdout).toContain('decided by RESOURCE_NOT_ALLOWED');
    expect(r.stdout).toContain('decision: expected allow, got deny 403 RESOURCE_NOT_ALLOWED');
    expect(r.stdout).toMatch(/decided by role device-owner grants devices:list via GET \/v1\/devices \(.*texture\.yaml:\d+:\d+\)/);
    expect(r.stdout).toContain('upstream.query: expected {"referenceId":["bob"]}, got {"referenceId":["alice"]}');
    expect(r.stdout).toContain('policy tests: 0 passed, 2 failed');
  });

  it('an invalid policy exits 3, distinct from a failed test', () => {
    const dir = policyCopy();
    writeFileSync(join(dir, 'broken.yaml'), 'roles:\n  x:\n    permissions: [ghost:read]\n');
    writeFileSync(join(dir, 'a.test.yaml'), 'tests: []\n');
    const r = cli('policy', 'test', dir);
    expect(r.status).toBe(3);
    expect(r.stdout).toMatch(/broken\.yaml:3:19 permission "ghost:read": unknown resource "ghost"/);
  });
});

describe('keygate policy test refuses a test file it cannot trust (exit 3, file:line:col, nothing run)', () => {
  const KEY = '    key: { type: scoped, referenceId: alice }\n';
  const REQUEST = '    request: { method: GET, path: /v1/devices/dev_bob_1 }\n';

  it('a misspelt expectation on a denied request does not pass', () => {
    const dir = policyCopy();
    writeFileSync(join(dir, 'typo.test.yaml'), `tests:\n  - name: bob's device\n${KEY}${REQUEST}    expect: { stauts: 200, decison: allow }\n`);
    const r = cli('policy', 'test', dir);
    expect(r.status).toBe(3);
    expect(r.stdout).toMatch(/typo\.test\.yaml:5:15 tests\[0\]\.expect: unknown field "stauts" \(did you mean "status"\?/);
    expect(r.stdout).toMatch(/typo\.test\.yaml:5:28 tests\[0\]\.expect: unknown field "decison" \(did you mean "decision"\?/);
    expect(r.stdout).toMatch(/\n2 error\(s\)\n$/);
    expect(r.stdout).not.toMatch(/PASS|policy tests:/);
  });

  it('a misspelt key type is not a server key', () => {
    const dir = policyCopy();
    writeFileSync(join(dir, 'type.test.yaml'), 'tests:\n  - name: delete\n    key: { type: sever }\n    request: { method: DELETE, path: /v1/devices/dev_bob_1 }\n    expect: { decision: allow }\n');
    const r = cli('policy', 'test', dir);
    expect(r.status).toBe(3);
    expect(r.stdout).toMatch(/type\.test\.yaml:3:18 tests\[0\]\.key\.type: unknown value "sever" \(did you mean "server"\? expected server, connect, scoped, operator, access-token\)/);
  });

  it('every other refusal, each at its position, across files', () => {
    const dir = policyCopy();
    const files: Record<string, string> = {
      'a-no-expect.test.yaml': `tests:\n  - name: n\n${KEY}${REQUEST}`,
      'b-empty-expect.test.yaml': `tests:\n  - name: n\n${KEY}${REQUEST}    expect: {}\n`,
      'c-role.test.yaml': `tests:\n  - name: n\n    key: { type: operator, roles: [full-acess] }\n${REQUEST}    expect: { decision: allow }\n`,
      'd-resource.test.yaml': `fixtures:\n  device: { d1: { referenceId: alice } }\n  sites: { s1: { id: s1 } }\ntests:\n  - name: n\n${KEY}${REQUEST}    expect: { decision: deny }\n`,
      'e-code.test.yaml': `tests:\n  - name: n\n${KEY}${REQUEST}    expect: { code: RESOURCE_NOT_ALOWED }\n`,
      'f-unread-response.test.yaml': `tests:\n  - name: n\n${KEY}${REQUEST}    response: { body: { id: dev_bob_1 } }\n    expect: { status: 403 }\n`,
      'g-same-name.test.yaml': `tests:\n  - name: n\n${KEY}${REQUEST}    expect: { status: 403 }\n  - name: n\n${KEY}${REQUEST}    expect: { status: 403 }\n`,
      'h-yaml.test.yaml': `tests:\n  - name: n\n    name: m\n${KEY}${REQUEST}    expect: { status: [403 }\n`,
      'i-empty.test.yaml': '# nothing yet\n',
      'j-no-tests.test.yaml': 'fixtures: {}\ntests: []\n',
      'k-types.test.yaml': `tests:\n  - name: n\n${KEY}    request: { method: GET, path: /v1/devices, trustedHop: yes, headers: { X-N: 1 } }\n    expect: { response: { items: -1 } }\n`,
      'l-no-key.test.yaml': `tests:\n  - name: n\n${REQUEST}    expect: { status: 403 }\n`,
    };
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    const r = cli('policy', 'test', dir);
    expect(r.status).toBe(3);
    const lines = r.stdout.trim().split('\n');
    const expected = [
      'a-no-expect.test.yaml:2:5 tests[0] needs "expect"',
      'b-empty-expect.test.yaml:5:13 tests[0].expect is empty: say what the case expects',
      'c-role.test.yaml:3:36 tests[0].key.roles[0]: unknown role "full-acess" (did you mean "full-access"?',
      'd-resource.test.yaml:2:3 fixtures: unknown resource "device" (did you mean "devices"?',
      'd-resource.test.yaml:3:3 fixtures: resource sites has no attributes.lookup: its fixtures would never be read',
      'e-code.test.yaml:5:21 tests[0].expect.code: unknown error code "RESOURCE_NOT_ALOWED" (did you mean "RESOURCE_NOT_ALLOWED"?',
      "f-unread-response.test.yaml:5:15 tests[0].response: the backend's answer is given, but expect has no response to check against it",
      'g-same-name.test.yaml:6:5 tests[1]: the name "n" is already used by tests[0]',
      'h-yaml.test.yaml:3:5 YAML: Map keys must be unique',
      'h-yaml.test.yaml:6:28 YAML: missed comma between flow collection entries',
      'i-empty.test.yaml:1:1 test file is empty',
      'j-no-tests.test.yaml:2:8 tests must have at least 1 entry, not 0',
      'k-types.test.yaml:4:60 tests[0].request.trustedHop must be true or false',
      "k-types.test.yaml:4:81 tests[0].request.headers.X-N must be a string or a list (quote it: '1')",
      'k-types.test.yaml:5:34 tests[0].expect.response.items must be an integer from 0 up, not -1',
      'l-no-key.test.yaml:2:5 tests[0] needs "key"',
    ];
    for (const want of expected)
      expect(
        lines.some((l) => l.includes(`/${want}`)),
        want,
      ).toBe(true);
    expect(lines.at(-1)).toBe(`${lines.length - 1} error(s)`);
    expect(r.stdout).not.toMatch(/PASS|FAIL|policy tests:/);
  });
});

describe('keygate policy explain', () => {
  it('shows the rule, the conditions and what would be forwarded', () => {
    const r = cli('policy', 'explain', '--key-type', 'scoped', '--reference-id', 'alice', 'GET', '/v1/devices?referenceId=bob');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/route: +GET \/v1\/devices -> devices:list \(policies\/texture\.yaml:\d+:\d+\)/);
    expect(r.stdout).toMatch(/rule: +role device-owner/);
    expect(r.stdout).toContain('referenceId ∈ {alice}: set as the only query filter');
    expect(r.stdout).toContain('forward:   GET /v1/devices?referenceId=alice');
  });

  it('explains a refusal', () => {
    const r = cli('policy', 'explain', '--key-type', 'connect', 'DELETE', '/v1/devices/d1');
    expect(r.stdout).toContain('decision:  deny 403 ACTION_NOT_ALLOWED');
  });
});
