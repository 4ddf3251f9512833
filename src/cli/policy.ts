import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DEFAULT_POLICIES } from '../config.ts';
import { isKeyType, KEY_TYPES, parseConditionArgs } from '../keys/key-record.ts';
import { explain } from '../policy/explain.ts';
import { loadPolicy } from '../policy/load.ts';
import type { CompiledPolicy } from '../policy/model.ts';
import { PolicyLoadError, formatIssue } from '../policy/policy-error.ts';
import { runPolicyTests, TestFileError } from '../policy/test-runner.ts';
import { flag, only, parseArgs, UsageError } from './args.ts';

/** Exit codes of `policy test`, after cerbos: 3 the policy (or a test file) is invalid, 4 a test failed. */
export const EXIT_INVALID_POLICY = 3;
export const EXIT_TEST_FAILED = 4;

function defaultPath(positional: string | undefined): string {
  return positional ?? (process.env.KEYGATE_POLICIES || DEFAULT_POLICIES);
}

function printIssues(err: PolicyLoadError): void {
  for (const issue of err.issues) process.stdout.write(formatIssue(issue) + '\n');
  process.stdout.write(`${err.issues.length} error(s)\n`);
}

function check(argv: readonly string[]): void {
  const args = parseArgs(argv);
  only(args, []);
  try {
    const policy = loadPolicy(defaultPath(args.positionals[0]));
    let routes = 0;
    for (const r of policy.resources.values()) for (const list of r.actions.values()) routes += list.length;
    process.stdout.write(`ok: ${policy.files.length} file(s), ${policy.resources.size} resources, ${routes} routes, ${policy.roles.size} roles (version ${policy.version})\n`);
  } catch (err) {
    if (!(err instanceof PolicyLoadError)) throw err;
    printIssues(err);
    process.exitCode = 1;
  }
}

async function test(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, ['verbose']);
  only(args, ['verbose']);
  let path = defaultPath(args.positionals[0]);
  let files: string[];
  if (statSync(path).isFile()) {
    files = [path];
    path = dirname(path);
  } else {
    files = readdirSync(path).filter((n) => /\.test\.ya?ml$/.test(n)).sort().map((n) => join(path, n));
  }
  if (files.length === 0) throw new UsageError(`no *.test.yaml files in ${path}`);
  let policy: CompiledPolicy;
  try {
    policy = loadPolicy(path);
  } catch (err) {
    if (!(err instanceof PolicyLoadError)) throw err;
    printIssues(err);
    process.exitCode = EXIT_INVALID_POLICY;
    return;
  }
  let results;
  try {
    results = await runPolicyTests(policy, files);
  } catch (err) {
    if (!(err instanceof TestFileError)) throw err;
    process.stdout.write(`${err.message}\n`);
    process.exitCode = EXIT_INVALID_POLICY;
    return;
  }
  const verbose = flag(args, 'verbose') === 'true';
  for (const r of results) {
    if (r.ok) {
      if (verbose) process.stdout.write(`PASS ${r.file} › ${r.name}\n     decided by ${r.rule}\n`);
      continue;
    }
    process.stdout.write(`FAIL ${r.file} › ${r.name}\n     decided by ${r.rule}\n`);
    for (const f of r.failures) process.stdout.write(`     ${f}\n`);
  }
  const failed = results.filter((r) => !r.ok).length;
  process.stdout.write(`policy tests: ${results.length - failed} passed, ${failed} failed\n`);
  if (failed > 0) process.exitCode = EXIT_TEST_FAILED;
}

function explainCommand(argv: readonly string[]): void {
  const args = parseArgs(argv);
  only(args, ['policies', 'key-type', 'reference-id', 'role', 'condition']);
  const [method, url, ...extra] = args.positionals;
  if (method === undefined || url === undefined || extra.length > 0) {
    throw new UsageError('usage: keygate policy explain --key-type TYPE [--reference-id ID] [--role R] [--condition attr:value] METHOD PATH');
  }
  const type = flag(args, 'key-type') ?? 'server';
  if (!isKeyType(type)) throw new UsageError(`--key-type must be one of ${KEY_TYPES.join(', ')}`);
  const policy = loadPolicy(flag(args, 'policies') ?? defaultPath(undefined));
  const referenceId = flag(args, 'reference-id') ?? null;
  process.stdout.write(
    explain(
      policy,
      { id: 'key_explain', type, referenceId, name: null, roles: args.flags.get('role') ?? [], conditions: parseConditionArgs(args.flags.get('condition') ?? []), expiresAtMs: Infinity },
      method.toUpperCase(),
      url,
    ),
  );
}

export async function policyCommand(argv: readonly string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === 'check') return check(rest);
  if (sub === 'test') return test(rest);
  if (sub === 'explain') return explainCommand(rest);
  throw new UsageError('usage: keygate policy check|test|explain');
}
