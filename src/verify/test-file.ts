import { readFileSync } from 'node:fs';
import { ERRORS } from '../errors/catalogue.ts';
import { KEY_TYPES } from '../keys/key-record.ts';
import type { CompiledPolicy } from '../policy/model.ts';
import type { PolicyIssue } from '../policy/policy-error.ts';
import { formatIssue } from '../policy/policy-error.ts';
import { SERVED_HANDLERS } from '../policy/served.ts';
import { parseSource } from '../policy/source.ts';
import { anyOf, boolean, didYouMean, type Infer, integer, json, jsonSchemaOf, list, map, nodeOf, nullValue, object, type Refs, ShapeReader, string } from '../policy/yaml-shape.ts';
import { YamlWalker } from '../policy/yaml-walker.ts';

/*
 * The fields of a policy test file, listed once: the reader below refuses anything else
 * (with its position), the runner's types follow from them, and the JSON Schema shipped
 * for editors (policies/keygate-policy-test.schema.json) is written from them. A field
 * added here is known everywhere at once; the runner must then assert it.
 */

const HEADER_NAME = string({ pattern: /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, patternHint: 'a header name (RFC 9110 token)' });
const STATUS = integer({ minimum: 100, maximum: 599 });
const ERROR_CODE = string({ pattern: /^[A-Z][A-Z0-9_]*$/, ref: 'errorCode', patternHint: 'an error code such as ACTION_NOT_ALLOWED', description: "An error code of the README's error table" });
const ONE_OR_MORE = anyOf([string(), list(string())], { description: 'A list sends (or expects) the name once per value' });

const KEY = object(
  {
    type: string({ enum: KEY_TYPES, description: "The calling key's type" }),
    referenceId: string({ minLength: 1, description: "The key's referenceId (scoped keys)" }),
    roles: list(string({ ref: 'role', description: 'A role of the policy' }), { description: "Roles carried on the key itself (operator keys, access tokens), added to its type's roles" }),
    conditions: anyOf(
      [
        list(string({ pattern: /^[^:]+:[^,]+$/, patternHint: 'attribute:value (a value without commas)' }), { description: '`attribute:value` entries, as keys create --condition takes them' }),
        map(list(string({ pattern: /^[^,]+$/, patternHint: 'a value without commas' })), { description: 'attribute -> allowed values' }),
      ],
      { description: "The key's own conditions (values of one attribute any-of, attributes all-of)" },
    ),
  },
  { required: ['type'], description: 'The key the request is sent with' },
);

const REQUEST = object(
  {
    method: string({ pattern: /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, patternHint: 'an HTTP method', description: 'Default GET' }),
    path: string({ minLength: 1, description: 'The request target as the client sends it, without the query; default /' }),
    query: anyOf([string({ description: 'The query string as sent, e.g. a=1&b=2' }), map(ONE_OR_MORE)], { description: 'The query, as sent or as a mapping' }),
    headers: map(ONE_OR_MORE, { keys: HEADER_NAME, description: 'Request headers (names are lower-cased)' }),
    rawHeaders: list(list(string(), { minItems: 2, maxItems: 2 }), { description: '[name, value] pairs sent after headers, names spelt as given (Content_Type, a second content-type)' }),
    body: json({ description: 'A string is sent as it is; any other value as JSON; either with content-type: application/json' }),
    trustedHop: boolean({ description: 'The request comes from a hop trusted with --trust-proxy' }),
  },
  { description: 'The request as the client sends it' },
);

const RESPONSE = object(
  {
    status: STATUS,
    headers: map(string(), { keys: HEADER_NAME }),
    body: json({ description: "A string is the body's exact text; any other value is sent as JSON" }),
  },
  { description: 'What the backend answers (only read for expect.response)' },
);

const EXPECT_UPSTREAM = object(
  {
    method: string({ minLength: 1 }),
    path: string({ minLength: 1, description: 'The forwarded path, without the query' }),
    query: map(ONE_OR_MORE, { description: 'The forwarded query, exactly (order aside)' }),
    headers: map(string(), { keys: HEADER_NAME, description: 'Headers the backend gets, with these values' }),
    removedHeaders: list(HEADER_NAME, { description: 'Headers the backend does not get' }),
    body: json({ description: 'The forwarded body: a string is its exact text, any other value its JSON' }),
  },
  { description: 'The request the backend receives (the case must be allowed)' },
);

const EXPECT_RESPONSE = object(
  {
    status: STATUS,
    code: ERROR_CODE,
    body: json({ description: 'The body the client gets, as JSON' }),
    items: integer({ minimum: 0, description: 'Items in the list the client gets' }),
    text: string({ description: 'The exact body text the client gets' }),
    headers: map(anyOf([string(), nullValue({ description: 'the header is not sent' })]), { keys: HEADER_NAME, description: 'Headers the client gets; null: not sent' }),
  },
  { description: "What the client gets once Keygate has checked the backend's response" },
);

const EXPECT = object(
  {
    decision: string({ enum: ['allow', 'deny'] }),
    serve: string({ enum: SERVED_HANDLERS, description: 'The handler Keygate answers the route with itself (`serve:` in the policy): nothing is forwarded' }),
    status: integer({ minimum: 100, maximum: 599, description: "The refusal's status, or 200 for a request that is forwarded" }),
    code: ERROR_CODE,
    rule: string({ minLength: 1, description: 'Text of the rule that decided (role, permission, route or error code)' }),
    upstream: EXPECT_UPSTREAM,
    response: EXPECT_RESPONSE,
  },
  { minProperties: 1, emptyHint: 'say what the case expects (decision, serve, status, code, rule, upstream or response)', description: 'What the case asserts: at least one of these' },
);

const CASE = object({ name: string({ minLength: 1 }), key: KEY, request: REQUEST, response: RESPONSE, expect: EXPECT }, { required: ['name', 'key', 'request', 'expect'] });

const TEST_FILE = object(
  {
    fixtures: map(map(anyOf([map(json()), nullValue({ description: 'no such resource (the lookup answers 404)' })]), { description: 'id -> the attributes the lookup answers' }), {
      keys: string({ ref: 'resource', description: 'A resource of the policy with attributes.lookup' }),
      description: 'What attribute lookups answer, per resource and id',
    }),
    tests: list(CASE, { minItems: 1 }),
  },
  { required: ['tests'] },
);

export type TestCase = Infer<typeof CASE>;
export type TestFile = Infer<typeof TEST_FILE> & { readonly file: string };

/** The JSON Schema of test files, as shipped beside the policy schema. */
export function testFileSchema(): Record<string, unknown> {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://keygate.dev/schemas/keygate-policy-test.schema.json',
    title: 'Keygate policy test file',
    description:
      'Cases for `keygate policy test`: a key and a request, and what Keygate must do with them. `keygate policy test` is the authority: it also checks roles, resources and error codes against the policy, and refuses a case that asserts nothing.',
    ...jsonSchemaOf(TEST_FILE),
  };
}

/** Thrown for test files that cannot be read as tests (exit code 3, like an invalid policy). */
export class TestFileError extends Error {
  override readonly name = 'TestFileError';
  readonly issues: readonly PolicyIssue[];

  constructor(issues: readonly PolicyIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.issues = issues;
  }
}

function refsFor(policy: CompiledPolicy): Refs {
  return {
    role: (name) => (policy.roles.has(name) ? undefined : `unknown role "${name}" (${didYouMean(name, [...policy.roles.keys()])}the policy has ${[...policy.roles.keys()].join(', ')})`),
    resource: (name) => {
      const r = policy.resources.get(name);
      if (r === undefined) return `unknown resource "${name}" (${didYouMean(name, [...policy.resources.keys()])}the policy has ${[...policy.resources.keys()].join(', ')})`;
      return r.lookup === null ? `resource ${name} has no attributes.lookup: its fixtures would never be read` : undefined;
    },
    errorCode: (code) => (Object.hasOwn(ERRORS, code) ? undefined : `unknown error code "${code}" (${didYouMean(code, Object.keys(ERRORS))}see the README's error table)`),
  };
}

/** What the shape cannot say: names that repeat, and a backend answer that no expectation reads. */
function checkCases(w: YamlWalker, tests: readonly TestCase[]): void {
  const names = new Map<string, number>();
  for (const [i, c] of tests.entries()) {
    const first = names.get(c.name);
    if (first !== undefined) w.fail(nodeOf(c), `tests[${i}]: the name "${c.name}" is already used by tests[${first}]`);
    else names.set(c.name, i);
    if (c.response !== undefined && c.expect.response === undefined) {
      w.fail(nodeOf(c.response), `tests[${i}].response: the backend's answer is given, but expect has no response to check against it`);
    }
  }
}

/** Reads one test file against the policy it tests; every problem is an issue with its position. */
export function readTestFile(path: string, text: string, policy: CompiledPolicy, issues: PolicyIssue[]): TestFile | undefined {
  const before = issues.length;
  const parsed = parseSource(path, text);
  issues.push(...parsed.issues);
  const w = new YamlWalker(parsed.src, issues);
  const contents = parsed.src.contents;
  if (contents === null) {
    w.fail(null, 'test file is empty (it needs a "tests" list)');
    return undefined;
  }
  const file = new ShapeReader(w, refsFor(policy)).read(contents, TEST_FILE, '');
  if (file?.tests !== undefined) checkCases(w, file.tests);
  return file === undefined || issues.length > before ? undefined : { ...file, file: path };
}

/** Reads every test file; throws TestFileError with every issue of every file. */
export function readTestFiles(paths: readonly string[], policy: CompiledPolicy): TestFile[] {
  const issues: PolicyIssue[] = [];
  const files: TestFile[] = [];
  for (const path of paths) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      issues.push({ file: path, line: 1, col: 1, message: `cannot read test file: ${(err as Error).message}` });
      continue;
    }
    const file = readTestFile(path, text, policy, issues);
    if (file !== undefined) files.push(file);
  }
  if (issues.length > 0) throw new TestFileError(issues.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col));
  return files;
}
