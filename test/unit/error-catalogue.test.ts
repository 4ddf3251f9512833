import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERRORS } from '../../src/errors/catalogue.ts';
import { ROOT } from '../helpers/sidecar.ts';

describe('error catalogue', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  it.each(Object.entries(ERRORS))('%s is documented in the README table with its status', (code, { status }) => {
    expect(readme).toContain(`| ${status} | \`${code}\` |`);
  });
});
