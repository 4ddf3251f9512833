// Layers import one way (cli → server → admin/connect → pipeline → policy/keys → errors):
// the parts this test knows of may not import the layers above them.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/sidecar.ts';

const SRC = join(ROOT, 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** The top folders under src/ that a file imports (relative imports only). */
function importedLayers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gm)) {
    const target = relative(SRC, join(file, '..', m[1]!));
    out.push(target.split('/')[0]!);
  }
  return out;
}

const FORBIDDEN: Record<string, readonly string[]> = {
  keys: ['policy', 'pipeline', 'admin', 'connect', 'server', 'cli'],
  policy: ['admin', 'connect', 'server', 'cli'],
  pipeline: ['admin', 'connect', 'server', 'cli'],
  admin: ['server', 'cli'],
  connect: ['server', 'cli'],
  errors: ['keys', 'policy', 'pipeline', 'admin', 'connect', 'server', 'cli'],
};

describe('import layers', () => {
  for (const [layer, forbidden] of Object.entries(FORBIDDEN)) {
    it(`src/${layer}/ imports none of ${forbidden.join(', ')}`, () => {
      const offending: string[] = [];
      for (const file of files(join(SRC, layer))) {
        for (const target of importedLayers(file)) if (forbidden.includes(target)) offending.push(`${relative(SRC, file)} imports ${target}/`);
      }
      expect(offending).toEqual([]);
    });
  }
});
