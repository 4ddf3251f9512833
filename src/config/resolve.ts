import { ConfigError, ValueError } from './config-error.ts';
import type { OptionRow, Options, Values } from './option.ts';

/** What the argument parser found for each flag (by flag name): parseArgs's `values`. */
export type FlagValues = Readonly<Record<string, string | boolean | Array<string | boolean> | undefined>>;

export type Environment = Readonly<Record<string, string | undefined>>;

/**
 * Every option of a table, resolved once: the flag wins over the environment variable,
 * which wins over the default; each value is parsed by its row, and a refusal names the
 * flag or variable it came from. The result is frozen. This is the only place Keygate
 * reads the environment.
 */
export function resolveOptions<O extends Options>(options: O, flags: FlagValues, env: Environment = process.env): Values<O> {
  const out: Record<string, unknown> = {};
  for (const [key, row] of Object.entries(options)) out[key] = resolveOne(row, flags[row.flag], env);
  return Object.freeze(out) as Values<O>;
}

function resolveOne(row: OptionRow, given: FlagValues[string], env: Environment): unknown {
  const flag = `--${row.flag}`;
  if (row.kind === 'switch') return given === true;
  if (row.kind === 'list') {
    const list = given === undefined ? [] : Array.isArray(given) ? given : [given];
    const fromEnv = row.env === undefined ? undefined : env[row.env];
    if (list.length === 0 && fromEnv !== undefined && fromEnv !== '') return [parse(row, fromEnv, row.env!)];
    return list.map((raw) => parse(row, String(raw), flag));
  }
  if (typeof given === 'string') return parse(row, given, flag);
  const fromEnv = row.env === undefined ? undefined : env[row.env];
  if (fromEnv !== undefined && fromEnv !== '') return parse(row, fromEnv, row.env!);
  if (row.default !== undefined) return parse(row, row.default, `the default of ${flag}`);
  if (row.required === true) {
    throw new ConfigError(flag, `${flag} ${row.placeholder}${row.env === undefined ? '' : ` (or ${row.env})`} is required: ${row.description}`);
  }
  return undefined;
}

function parse(row: OptionRow, raw: string, source: string): unknown {
  if (raw === '') throw new ConfigError(source, `${source} needs a value (${row.placeholder})`);
  try {
    return row.parse!(raw);
  } catch (err) {
    if (err instanceof ValueError) throw new ConfigError(source, `${source}: ${err.message}`);
    throw err;
  }
}
