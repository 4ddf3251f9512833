import { type ParseArgsConfig, parseArgs } from 'node:util';
import type { CommandSpec } from '../config/commands.ts';
import type { Options, Values } from '../config/option.ts';
import { helpText } from '../config/render.ts';
import { type Environment, type FlagValues, resolveOptions } from '../config/resolve.ts';
import { UsageError } from './usage-error.ts';

export type Parsed<O extends Options> = { readonly help: true } | { readonly help: false; readonly values: Values<O>; readonly positionals: readonly string[] };

/** `--help` or `-h` anywhere before `--` asks for help, whatever else the line holds. */
function wantsHelp(argv: readonly string[]): boolean {
  for (const arg of argv) {
    if (arg === '--') return false;
    if (arg === '--help' || arg === '-h') return true;
  }
  return false;
}

function parseArgsOptions(options: Options): NonNullable<ParseArgsConfig['options']> {
  const out: NonNullable<ParseArgsConfig['options']> = { help: { type: 'boolean', short: 'h' } };
  for (const row of Object.values(options)) {
    out[row.flag] = {
      type: row.kind === 'switch' ? 'boolean' : 'string',
      ...(row.kind === 'list' ? { multiple: true } : {}),
      ...(row.short === undefined ? {} : { short: row.short }),
    };
  }
  return out;
}

/** node:util's messages name the flag; two of them are said more plainly (one is three lines). */
function usageMessage(err: Error): string {
  const ambiguous = /^Option '([^']+)' argument is ambiguous/.exec(err.message);
  if (ambiguous !== null) return `${ambiguous[1]} needs a value (write ${ambiguous[1]}=VALUE for a value that starts with "-")`;
  const missing = /^Option '(?:-\w, )?(--[\w-]+) <value>' argument missing/.exec(err.message);
  if (missing !== null) return `${missing[1]} needs a value`;
  return err.message;
}

/**
 * Parses a command line against the command's options table with node:util's parseArgs
 * (strict: unknown flags, a missing value, a value given to a switch and stray
 * positionals are refused), refuses a single-valued flag given twice, then resolves
 * every option (flag > environment > default) through the table's parsers.
 */
export function parseCommand<O extends Options>(spec: CommandSpec<O>, argv: readonly string[], env?: Environment): Parsed<O> {
  if (wantsHelp(argv)) return { help: true };
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: parseArgsOptions(spec.options), strict: true, allowPositionals: spec.positionals.max > 0, tokens: true });
  } catch (err) {
    if (typeof (err as { code?: unknown }).code === 'string' && (err as { code: string }).code.startsWith('ERR_PARSE_ARGS_')) {
      throw new UsageError(usageMessage(err as Error), spec.name);
    }
    throw err;
  }
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option') continue;
    const row = Object.values(spec.options).find((r) => r.flag === token.name);
    if (row !== undefined && row.kind !== 'list' && seen.has(token.name)) throw new UsageError(`--${token.name} given more than once`, spec.name);
    seen.add(token.name);
  }
  const { positionals } = parsed;
  if (positionals.length < spec.positionals.min || positionals.length > spec.positionals.max) {
    throw new UsageError(`expected ${spec.args === '' ? 'no arguments' : spec.args}, got ${positionals.length === 0 ? 'none' : positionals.map((p) => `"${p}"`).join(' ')}`, spec.name);
  }
  return { help: false, values: resolveOptions(spec.options, parsed.values as FlagValues, env), positionals };
}

/** parseCommand for a command's entry point: on `--help` prints the help and answers undefined. */
export function parseOrHelp<O extends Options>(spec: CommandSpec<O>, argv: readonly string[]): Exclude<Parsed<O>, { help: true }> | undefined {
  const parsed = parseCommand(spec, argv);
  if (!parsed.help) return parsed;
  process.stdout.write(helpText(spec));
  return undefined;
}
