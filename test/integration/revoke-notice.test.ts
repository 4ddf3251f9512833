// `keys revoke` promises only what is true: the CLI cannot know a running sidecar's
// --key-cache-ttl, so it names the option, and the value when this environment sets it.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BIN, ROOT, tempStore } from '../helpers/sidecar.ts';

function cli(args: string[], env: Record<string, string | undefined> = {}): { status: number | null; stdout: string; stderr: string } {
  const merged = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete merged[k];
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', env: merged, timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function revokeFresh(env: Record<string, string | undefined>): string {
  const store = tempStore();
  const created = cli(['keys', 'create', '--type', 'server', '--store', store, '--json']);
  expect(created.status, created.stderr).toBe(0);
  const { id } = JSON.parse(created.stdout) as { id: string };
  const revoked = cli(['keys', 'revoke', id, '--store', store], env);
  expect(revoked.status, revoked.stderr).toBe(0);
  return revoked.stdout;
}

describe('keys revoke says what bounds the revocation', () => {
  it('without KEYGATE_KEY_CACHE_TTL: the option, its default and its ceiling, no promise of 2 s', () => {
    const out = revokeFresh({ KEYGATE_KEY_CACHE_TTL: undefined });
    expect(out).toMatch(
      /^Revoked key_\w+\. Running sidecars on this file notice within a second \(they check it every 0\.2 s\); one that misses it refuses it within its --key-cache-ttl \(2 s by default, at most 5 s\)\.\n$/,
    );
  });

  it('with KEYGATE_KEY_CACHE_TTL set here: that value, for sidecars started the same way', () => {
    const out = revokeFresh({ KEYGATE_KEY_CACHE_TTL: '4500' });
    expect(out).toMatch(/within its --key-cache-ttl \(4\.5 s for a sidecar started with the same setting; at most 5 s\)/);
  });
});
