import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { POLICIES } from '../helpers/sidecar.ts';

const schema = JSON.parse(readFileSync(join(POLICIES, 'keygate-policy.schema.json'), 'utf8'));
const validate = new Ajv.default({ allErrors: true, strict: false }).compile(schema);

function policyFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => /\.ya?ml$/.test(n) && !/\.test\.ya?ml$/.test(n))
    .map((n) => join(dir, n));
}

describe('the shipped JSON Schema (for editors)', () => {
  it.each([...policyFiles(POLICIES), ...policyFiles(join(POLICIES, 'examples'))])('accepts %s', (file) => {
    const ok = validate(parse(readFileSync(file, 'utf8')));
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it.each([
    [{ resourcez: {} }],
    [{ resources: { d: { actions: { list: ['FETCH /x'] } } } }],
    [{ resources: { d: { actions: { list: [{ route: 'GET /x', conditions: 'maybe' }] } } } }],
    [{ roles: { r: { permissions: ['devices'] } } }],
    [{ keyTypes: { root: [] } }],
    [{ keyTypes: { scoped: null } }],
  ])('rejects %j', (doc) => {
    expect(validate(doc)).toBe(false);
  });
});
