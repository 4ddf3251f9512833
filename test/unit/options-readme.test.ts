import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/config/commands.ts';
import { markdownTable } from '../../src/config/render.ts';
import { ROOT } from '../helpers/sidecar.ts';

// The commands a newcomer needs first are tabled in the README, the other keys commands in docs/keys.md.
const DOCS = ['README.md', 'docs/keys.md'].map((f) => readFileSync(join(ROOT, f), 'utf8')).join('\n');
const BLOCK = /<!-- options: ([a-z ]+) -->\n([\s\S]*?)\n<!-- \/options -->/g;
const blocks = new Map([...DOCS.matchAll(BLOCK)].map((m) => [m[1]!, m[2]!]));

// The option tables of the README and docs/keys.md are the options tables of src/config/commands.ts, rendered:
// to change one, change the table and paste the expected block this test prints.
describe("the README's option tables", () => {
  for (const name of ['serve', 'demo', 'keys create', 'keys list', 'keys show', 'keys update', 'keys rotate', 'keys revoke', 'keys events']) {
    it(`has the table of keygate ${name}`, () => {
      expect(blocks.has(name), `README.md / docs/keys.md lack <!-- options: ${name} -->`).toBe(true);
    });
  }

  for (const [name, table] of blocks) {
    it(`keygate ${name}: the README's table is the options table`, () => {
      const spec = COMMANDS.find((c) => c.name === name);
      expect(spec, `no command "${name}"`).toBeDefined();
      expect(table).toBe(markdownTable(spec!));
    });
  }
});
