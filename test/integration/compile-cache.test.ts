// bin/keygate.js turns on Node's compile cache in Keygate's own directory
// (../node_modules/.cache/keygate beside bin/), so a restart skips compiling its modules.
// The binary is run from a copy whose src/ links to the real one, so the cache directory
// is a fresh one the test can look into.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers/sidecar.ts';

function installCopy(): string {
  const dir = tempDir('keygate-cc-');
  mkdirSync(join(dir, 'bin'));
  copyFileSync(join(ROOT, 'bin/keygate.js'), join(dir, 'bin/keygate.js'));
  symlinkSync(join(ROOT, 'src'), join(dir, 'src'));
  return dir;
}

const run = (dir: string, env: NodeJS.ProcessEnv = {}): string =>
  execFileSync(process.execPath, [join(dir, 'bin/keygate.js'), '--help'], { encoding: 'utf8', env: { ...process.env, NODE_COMPILE_CACHE: '', ...env } });

const cached = (dir: string): string[] => {
  const root = join(dir, 'node_modules/.cache/keygate');
  return existsSync(root) ? readdirSync(root, { recursive: true, encoding: 'utf8' }) : [];
};

it('a first run fills the compile cache beside bin/, and a second run still works from it', () => {
  const dir = installCopy();
  expect(run(dir)).toContain('keygate');
  const files = cached(dir);
  expect(files.length, 'cache entries written').toBeGreaterThan(1);
  expect(run(dir)).toContain('keygate');
  expect(cached(dir).length).toBeGreaterThanOrEqual(files.length);
});

it('NODE_DISABLE_COMPILE_CACHE=1 leaves it off', () => {
  const dir = installCopy();
  expect(run(dir, { NODE_DISABLE_COMPILE_CACHE: '1' })).toContain('keygate');
  expect(cached(dir)).toEqual([]);
});
