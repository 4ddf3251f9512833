import { readFileSync } from 'node:fs';
import { COMMANDS } from '../config/commands.ts';
import { ConfigError } from '../config/config-error.ts';
import { PolicyLoadError } from '../policy/policy-error.ts';
import { UsageError } from './usage-error.ts';

/** Exit codes: 0 ok, 1 failure, 2 usage or option error. `policy test` adds 3 (invalid policy) and 4 (failed test). */
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'usage: keygate <command> [options]',
    '',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "  keygate <command> --help   the command's options, defaults and environment variables",
    '  keygate --version          the version',
    '',
  ].join('\n');
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function run(command: string | undefined, rest: readonly string[]): Promise<void> {
  switch (command) {
    case 'serve':
      return (await import('./serve.ts')).serveCommand(rest);
    case 'demo':
      return (await import('./demo.ts')).demoCommand(rest);
    case 'keys':
      return (await import('./keys.ts')).keysCommand(rest);
    case 'policy':
      return (await import('./policy.ts')).policyCommand(rest);
    case 'help':
      // `keygate help keys list` is `keygate keys list --help`.
      if (rest.length > 0) return run(rest[0], [...rest.slice(1), '--help']);
      process.stdout.write(usage());
      return;
    case undefined:
    case '--help':
    case '-h':
      process.stdout.write(usage());
      return;
    case '--version':
      process.stdout.write(`keygate ${version()}\n`);
      return;
    default:
      throw new UsageError(command.startsWith('-') ? `unknown option ${command} before the command` : `unknown command "${command}"`);
  }
}

export async function main(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv;
  try {
    await run(command, rest);
  } catch (err) {
    if (err instanceof UsageError) {
      const help = err.command === undefined ? 'keygate --help lists the commands' : `keygate ${err.command} --help lists the options`;
      process.stderr.write(`keygate: ${err.message}\n(${help})\n`);
      process.exitCode = EXIT_USAGE;
    } else if (err instanceof ConfigError) {
      process.stderr.write(`keygate: ${err.message}\n`);
      process.exitCode = EXIT_USAGE;
    } else if (err instanceof PolicyLoadError) {
      process.stderr.write(`keygate: invalid policy\n${err.message}\n`);
      process.exitCode = EXIT_FAILURE;
    } else {
      process.stderr.write(`keygate: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = EXIT_FAILURE;
    }
    // A command that failed half-way (serve with one listener bound, a store pool still
    // connecting) must not keep the process alive: the error is said, end now.
    process.exit();
  }
}
