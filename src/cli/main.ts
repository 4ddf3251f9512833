import { PolicyLoadError } from '../policy/policy-error.ts';
import { UsageError } from './args.ts';

const USAGE = `usage: keygate <command>

  serve                 run the sidecar (--upstream URL required; see README)
  demo                  demo backend + seeded keys + sidecar, with curl lines to try
  keys create|list|revoke
  policy check|test|explain
`;

/** Exit codes: 0 ok, 1 failure, 2 usage error. `policy test` adds 3 (invalid policy) and 4 (failed test). */
export async function main(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
        return await (await import('./serve.ts')).serveCommand(rest);
      case 'demo':
        return await (await import('./demo.ts')).demoCommand(rest);
      case 'keys':
        return await (await import('./keys.ts')).keysCommand(rest);
      case 'policy':
        return await (await import('./policy.ts')).policyCommand(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`keygate: ${err.message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else if (err instanceof PolicyLoadError) {
      process.stderr.write(`keygate: invalid policy\n${err.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`keygate: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    }
  }
}
