// keys create: the browser and Connect settings of key record v2, checked before anything
// is made, and the audit line each change leaves.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, ROOT, tempDir } from '../helpers/sidecar.ts';

function cli(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
}

describe('keys create --allow-origin, --allow-redirect, --allow-reference-id', () => {
  it('stores normalised origins and redirects and the switch, and logs the creation without the secret', () => {
    const store = `sqlite:${join(tempDir(), 'k.db')}`;
    const r = cli([
      'keys',
      'create',
      '--type',
      'connect',
      '--name',
      'web',
      '--allow-origin',
      'https://App.Example.com:443',
      '--allow-origin',
      'http://localhost:5173',
      '--allow-redirect',
      'https://app.example.com/connected',
      '--allow-redirect',
      'myapp://connected',
      '--allow-reference-id',
      '--json',
      '--store',
      store,
    ]);
    expect(r.status, r.stderr).toBe(0);
    const made = JSON.parse(r.stdout) as Record<string, unknown> & { key: string };
    expect(made).toMatchObject({
      type: 'connect',
      allowedOrigins: ['https://app.example.com', 'http://localhost:5173'],
      allowedRedirects: ['https://app.example.com/connected', 'myapp://connected'],
      allowReferenceId: true,
      createdBy: 'cli',
      keyPrefix: made.key.slice(0, 8),
    });
    const line = JSON.parse(r.stderr.trim()) as Record<string, unknown>;
    expect(line).toMatchObject({ msg: 'key event', event: 'created', keyId: made.id, actor: 'cli' });
    expect(r.stderr).not.toContain(made.key.slice(8));
  });

  it.each([
    [['--type', 'connect', '--allow-origin', 'http://app.example.com'], '--allow-origin', /loopback/],
    [['--type', 'connect', '--allow-origin', 'https://app.example.com/x'], '--allow-origin', /without a path/],
    [['--type', 'connect', '--allow-redirect', 'https://app.example.com/cb#frag'], '--allow-redirect', /fragment/],
    [['--type', 'connect', '--allow-redirect', 'javascript://x'], '--allow-redirect', /cannot be a redirect/],
    [['--type', 'server', '--allow-origin', 'https://app.example.com'], '--allow-origin', /secret/],
    [['--type', 'server', '--allow-reference-id'], '--allow-reference-id', /connect keys/],
    [['--type', 'scoped', '--reference-id', 'a', '--allow-redirect', 'https://a.example/cb'], '--allow-redirect', /no redirects/],
    [['--type', 'connect', '--allow-reference-id=yes'], '--allow-reference-id', /does not take an argument/],
  ])('%j is refused (exit 2), naming the flag, and makes no store', (args, flag, why) => {
    const path = join(tempDir(), 'k.db');
    const r = cli(['keys', 'create', ...args, '--store', `sqlite:${path}`]);
    expect(r.status, r.stdout).toBe(2);
    expect(r.stderr).toContain(flag);
    expect(r.stderr).toMatch(why);
    expect(existsSync(path)).toBe(false);
  });
});
