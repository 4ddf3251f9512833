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

  it('prints every error with file:line:col and exits 1', () => {
    const dir = tempDir('kg-bad-');
    writeFileSync(join(dir, 'a.yaml'), 'resources:\n  d:\n    actions:\n      list: [FETCH /a]\n      read: ["GET /a/{1x}"]\nroles:\n  r:\n    permissions: [nope:read]\n    conditions: { x: "{key.secret}" }\n');
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

describe('keygate policy test', () => {
  it('passes the shipped test files (every row of the key table)', () => {
    const r = cli('policy', 'test', 'policies');
    expect(r.stdout).toMatch(/policy tests: (\d+) passed, 0 failed/);
    expect(Number(/(\d+) passed/.exec(r.stdout)![1])).toBeGreaterThanOrEqual(30);
    expect(r.status).toBe(0);
  });

  it('a failed case exits 4 and names the case and the rule that decided', () => {
    const dir = policyCopy();
    writeFileSync(join(dir, 'wrong.test.yaml'), [
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
    ].join('\n'));
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
