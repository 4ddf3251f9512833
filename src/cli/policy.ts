import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type CommandSpec, POLICY_CHECK, POLICY_EXPLAIN, POLICY_TEST } from '../config/commands.ts';
import { parseConditionArgs } from '../keys/key-record.ts';
import { testPrincipal } from '../keys/principal.ts';
import { connectWarnings } from '../policy/connect-section.ts';
import { loadPolicy } from '../policy/load.ts';
import type { CompiledPolicy } from '../policy/model.ts';
import { formatIssue, PolicyLoadError } from '../policy/policy-error.ts';
import { explain } from '../verify/explain.ts';
import { TestFileError } from '../verify/test-file.ts';
import { runPolicyTests } from '../verify/test-runner.ts';
import { parseOrHelp } from './parse-command.ts';
import { UsageError } from './usage-error.ts';

/** Exit codes of `policy test`, after cerbos: 3 the policy (or a test file) is invalid, 4 a test failed. */
export const EXIT_INVALID_POLICY = 3;
export const EXIT_TEST_FAILED = 4;

/** `policy check PATH` and `policy check --policies PATH` are the same; both at once is a usage error. */
function policyPath(spec: CommandSpec, argv: readonly string[], positional: string | undefined, fromOptions: string): string {
  if (positional === undefined) return fromOptions;
  if (argv.some((a) => a === '--policies' || a.startsWith('--policies='))) throw new UsageError('give the policies once: PATH or --policies, not both', spec.name);
  return positional;
}

function printIssues(err: PolicyLoadError | TestFileError): void {
  for (const issue of err.issues) process.stdout.write(formatIssue(issue) + '\n');
  process.stdout.write(`${err.issues.length} error(s)\n`);
}

function check(argv: readonly string[]): void {
  const parsed = parseOrHelp(POLICY_CHECK, argv);
  if (parsed === undefined) return;
  try {
    const policy = loadPolicy(policyPath(POLICY_CHECK, argv, parsed.positionals[0], parsed.values.policies));
    let routes = 0;
    for (const r of policy.resources.values()) for (const list of r.actions.values()) routes += list.length;
    process.stdout.write(`ok: ${policy.files.length} file(s), ${policy.resources.size} resources, ${routes} routes, ${policy.roles.size} roles (version ${policy.version})\n`);
    for (const w of connectWarnings(policy.connect)) process.stderr.write(`warning: ${w}\n`);
  } catch (err) {
    if (!(err instanceof PolicyLoadError)) throw err;
    printIssues(err);
    process.exitCode = 1;
  }
}

async function test(argv: readonly string[]): Promise<void> {
  const parsed = parseOrHelp(POLICY_TEST, argv);
  if (parsed === undefined) return;
  let path = policyPath(POLICY_TEST, argv, parsed.positionals[0], parsed.values.policies);
  let files: string[];
  if (statSync(path).isFile()) {
    files = [path];
    path = dirname(path);
  } else {
    files = readdirSync(path)
      .filter((n) => /\.test\.ya?ml$/.test(n))
      .sort()
      .map((n) => join(path, n));
  }
  if (files.length === 0) throw new UsageError(`no *.test.yaml files in ${path}`, POLICY_TEST.name);
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
    printIssues(err);
    process.exitCode = EXIT_INVALID_POLICY;
    return;
  }
  const verbose = parsed.values.verbose;
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
  const parsed = parseOrHelp(POLICY_EXPLAIN, argv);
  if (parsed === undefined) return;
  const [method, url] = parsed.positionals as [string, string];
  const v = parsed.values;
  const policy = loadPolicy(v.policies);
  process.stdout.write(
    explain(policy, testPrincipal({ id: 'key_explain', type: v.keyType, referenceId: v.referenceId ?? null, roles: v.roles, conditions: parseConditionArgs(v.conditions) }), method.toUpperCase(), url),
  );
}

export async function policyCommand(argv: readonly string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === 'check') return check(rest);
  if (sub === 'test') return test(rest);
  if (sub === 'explain') return explainCommand(rest);
  if (sub === '--help' || sub === '-h') {
    process.stdout.write(`usage: keygate policy check|test|explain [options]\n\n${[POLICY_CHECK, POLICY_TEST, POLICY_EXPLAIN].map((c) => `  keygate ${c.name.padEnd(14)} ${c.summary}`).join('\n')}\n`);
    return;
  }
  throw new UsageError(sub === undefined ? 'policy needs a command: check, test or explain' : `unknown command "policy ${sub}" (check, test or explain)`, 'policy');
}
