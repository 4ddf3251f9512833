import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/sidecar.ts';

// bin/keygate.js's shebang carries Keygate's Node flags; every other way of starting it
// (the image, npm start, npm run demo) must pass the same ones.
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');
const shebang = read('bin/keygate.js').split('\n', 1)[0]!;
const flags = shebang.replace('#!/usr/bin/env -S node', '').trim();

describe('entrypoint', () => {
  it('the shebang runs node with explicit flags', () => {
    expect(shebang.startsWith('#!/usr/bin/env -S node ')).toBe(true);
    expect(flags).toMatch(/^--max-semi-space-size=\d+ --expose-gc$/);
  });

  it('the Dockerfile ENTRYPOINT passes the same flags to the same file', () => {
    const entry = /^ENTRYPOINT (\[.*\])$/m.exec(read('Dockerfile'))?.[1];
    expect(JSON.parse(entry!)).toEqual(['node', ...flags.split(' '), 'bin/keygate.js']);
  });

  it('the binary sets Keygate’s runtime V8 flags (src/server/v8-flags.ts) before it loads the CLI', () => {
    const source = read('bin/keygate.js');
    const applied = source.indexOf('applyRuntimeV8Flags();');
    expect(applied).toBeGreaterThan(source.indexOf("await import('../src/server/v8-flags.ts')"));
    // After the compile cache is on: a TypeScript module loaded before it loads Node's type
    // stripper (about 4 MB of source text on the heap) even when everything else is cached.
    expect(source.indexOf("await import('../src/server/v8-flags.ts')")).toBeGreaterThan(source.indexOf('enableCompileCache('));
    expect(applied).toBeLessThan(source.indexOf("await import('../src/cli/main.ts')"));
  });

  it('npm start and npm run demo pass the same flags', () => {
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.start).toBe(`node ${flags} bin/keygate.js`);
    expect(scripts.demo).toBe(`node ${flags} bin/keygate.js demo`);
  });
});
