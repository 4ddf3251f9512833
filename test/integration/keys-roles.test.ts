// keys create / keys update --role against a policy: refused when --policies (or
// KEYGATE_POLICIES) names the policy the key will meet, a warning against ./policies
// otherwise (roles are bound late; the CLI runs beside no sidecar). Real CLI, real files.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, ROOT, tempDir } from '../helpers/sidecar.ts';

function cli(args: string[], env: Record<string, string> = {}, cwd = ROOT) {
  const clean = { ...process.env, ...env };
  if (!('KEYGATE_POLICIES' in env)) delete clean.KEYGATE_POLICIES;
  return spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout: 20_000, env: clean });
}

const store = (): string => `sqlite:${join(tempDir(), 'k.db')}`;
const listed = (s: string): string => cli(['keys', 'list', '--json', '--store', s]).stdout;

describe('--role is checked against the policies', () => {
  it('with --policies an unknown role is refused, named with a suggestion, and nothing is made', () => {
    const s = store();
    const r = cli(['keys', 'create', '--type', 'access-token', '--role', 'device-ownr', '--policies', 'policies', '--store', s]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^keygate: --role: the policies at policies have no role "device-ownr" \(did you mean "device-owner"\?/m);
    expect(r.stderr).toContain('full-access');
    expect(listed(s)).toBe('');
  });

  it('KEYGATE_POLICIES does the same; a known role passes; several are checked each', () => {
    const s = store();
    const bad = cli(['keys', 'create', '--type', 'operator', '--role', 'full-access', '--role', 'nope', '--store', s], { KEYGATE_POLICIES: 'policies/texture.yaml' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('no role "nope"');
    const ok = cli(['keys', 'create', '--type', 'operator', '--role', 'full-access', '--json', '--store', s], { KEYGATE_POLICIES: 'policies/texture.yaml' });
    expect(ok.status, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ type: 'operator', roles: ['full-access'] });
  });

  it('keys update checks the new roles the same way and changes nothing when one is unknown', () => {
    const s = store();
    const made = JSON.parse(cli(['keys', 'create', '--type', 'access-token', '--role', 'device-owner', '--reference-id', 'alice', '--json', '--store', s]).stdout) as { id: string };
    const r = cli(['keys', 'update', made.id, '--role', 'admin', '--policies', 'policies', '--store', s]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--role: the policies at policies have no role "admin"');
    expect(JSON.parse(cli(['keys', 'show', made.id, '--json', '--store', s]).stdout)).toMatchObject({ roles: ['device-owner'] });
  });

  it('a --policies that does not load is refused with its file:line:col', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'bad.yaml'), 'version: 1\nroles: [\n');
    const r = cli(['keys', 'create', '--type', 'operator', '--role', 'full-access', '--policies', dir, '--store', store()]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--policies:');
    expect(r.stderr).toMatch(/bad\.yaml:\d+:\d+/);
  });

  it('without --policies a role missing from ./policies is a warning: the key is made, carrying it', () => {
    const s = store();
    const r = cli(['keys', 'create', '--type', 'access-token', '--role', 'factory-reader', '--json', '--store', s]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('warning: --role: the policies at ./policies have no role "factory-reader"');
    expect(JSON.parse(r.stdout)).toMatchObject({ roles: ['factory-reader'] });
    // Where no ./policies exists, nothing is said.
    const elsewhere = cli(['keys', 'create', '--type', 'access-token', '--role', 'factory-reader', '--json', '--store', s], {}, tempDir());
    expect(elsewhere.status, elsewhere.stderr).toBe(0);
    expect(elsewhere.stderr).not.toContain('warning');
  });
});
