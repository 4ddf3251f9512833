import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadPolicy } from '../../src/policy/load.ts';
import type { PolicyIssue } from '../../src/policy/policy-error.ts';
import { readTestFile, testFileSchema } from '../../src/verify/test-file.ts';
import { POLICIES, ROOT } from '../helpers/sidecar.ts';

const SCHEMA_FILE = join(POLICIES, 'keygate-policy-test.schema.json');
const schema = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8'));
const validate = new Ajv.default({ allErrors: true, strict: true }).compile(schema);
const texture = loadPolicy(join(POLICIES, 'texture.yaml'));

const testFiles = [POLICIES, join(POLICIES, 'examples')].flatMap((dir) =>
  readdirSync(dir)
    .filter((n) => /\.test\.ya?ml$/.test(n))
    .map((n) => join(dir, n)),
);

function readerIssues(text: string): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  readTestFile('t.test.yaml', text, texture, issues);
  return issues;
}

describe('the JSON Schema of policy test files (for editors)', () => {
  // Written from the one list of fields in src/verify/test-file.ts: after changing it, run
  // `npx vitest run -u test/unit/policy-test-schema.test.ts` to rewrite the shipped file.
  it('is the schema of the fields the runner reads', async () => {
    await expect(JSON.stringify(testFileSchema(), null, 2) + '\n').toMatchFileSnapshot(SCHEMA_FILE);
  });

  it('the shipped test files are all found', () => {
    expect(testFiles.map((f) => f.slice(POLICIES.length + 1))).toEqual(expect.arrayContaining(['examples/evrythng.test.yaml', 'texture.test.yaml']));
  });

  it.each(testFiles)('accepts %s, which names it on its first line', (file) => {
    const text = readFileSync(file, 'utf8');
    const first = text.split('\n', 1)[0]!;
    const m = /^# yaml-language-server: \$schema=(\S+)$/.exec(first);
    expect(m, first).not.toBeNull();
    expect(join(file, '..', m![1]!)).toBe(SCHEMA_FILE);
    const ok = validate(parse(text));
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  const CASE = '  - name: n\n    key: { type: server }\n    request: { path: /v1/sites }\n';
  // Each refused by the schema and by the runner's reader alike (the reader also says where).
  it.each([
    ['a misspelt expectation', `tests:\n${CASE}    expect: { stauts: 200, decison: allow }\n`, 'tests[0].expect: unknown field "stauts"'],
    ['a misspelt key type', 'tests:\n  - name: n\n    key: { type: servr }\n    request: { path: /v1/sites }\n    expect: { decision: allow }\n', 'tests[0].key.type: unknown value "servr"'],
    ['a case without expect', `tests:\n${CASE}`, 'tests[0] needs "expect"'],
    ['an empty expect', `tests:\n${CASE}    expect: {}\n`, 'tests[0].expect is empty'],
    ['a case without a key', 'tests:\n  - name: n\n    request: { path: /v1/sites }\n    expect: { decision: allow }\n', 'tests[0] needs "key"'],
    ['a key without a type', 'tests:\n  - name: n\n    key: { referenceId: alice }\n    request: { path: /v1/sites }\n    expect: { decision: allow }\n', 'tests[0].key needs "type"'],
    ['an unknown top-level field', `test:\n${CASE}    expect: { decision: allow }\n`, 'the file: unknown field "test"'],
    ['no tests', 'tests: []\n', 'tests must have at least 1 entry, not 0'],
    ['a status out of range', `tests:\n${CASE}    expect: { status: 20 }\n`, 'tests[0].expect.status must be an integer from 100 to 599'],
    [
      'a header value that is a number',
      `tests:\n${CASE}    expect: { upstream: { headers: { content-length: 5 } } }\n`,
      "tests[0].expect.upstream.headers.content-length must be a string (quote it: '5')",
    ],
    [
      'a rawHeaders entry that is not a pair',
      'tests:\n  - name: n\n    key: { type: server }\n    request: { path: /v1/sites, rawHeaders: [[X-A]] }\n    expect: { decision: allow }\n',
      'tests[0].request.rawHeaders[0] must have exactly 2 entries, not 1',
    ],
    [
      'a condition without a value',
      'tests:\n  - name: n\n    key: { type: scoped, conditions: [referenceId] }\n    request: { path: /v1/sites }\n    expect: { decision: allow }\n',
      'tests[0].key.conditions[0]: "referenceId" must be attribute:value',
    ],
    ['a decision that is neither', `tests:\n${CASE}    expect: { decision: allowed }\n`, 'tests[0].expect.decision: unknown value "allowed" (did you mean "allow"?'],
    ['an error code in lower case', `tests:\n${CASE}    expect: { code: action_not_allowed }\n`, 'tests[0].expect.code: "action_not_allowed" must be an error code'],
    ['a misspelt upstream field', `tests:\n${CASE}    expect: { upstream: { querry: {} } }\n`, 'tests[0].expect.upstream: unknown field "querry" (did you mean "query"?'],
    ['a misspelt response expectation', `tests:\n${CASE}    expect: { response: { item: 1 } }\n`, 'tests[0].expect.response: unknown field "item" (did you mean "items"?'],
  ])('refuses %s', (_what, text, message) => {
    expect(validate(parse(text)), 'schema').toBe(false);
    expect(readerIssues(text).map((i) => i.message)).toContainEqual(expect.stringContaining(message));
  });

  it("the README's example is a test file both accept", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### Policy tests'));
    const example = /```yaml\n([\s\S]*?)```/.exec(section)![1]!;
    expect(readerIssues(example)).toEqual([]);
    expect(validate(parse(example))).toBe(true);
  });

  it('follows YAML aliases, so a key can be named once', () => {
    const text =
      'tests:\n  - name: a\n    key: &alice { type: scoped, referenceId: alice }\n    request: { path: /v1/devices }\n    expect: { decision: allow }\n  - name: b\n    key: *alice\n    request: { path: /v1/devices }\n    expect: { decision: allow }\n';
    expect(readerIssues(text)).toEqual([]);
  });
});
