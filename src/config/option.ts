/**
 * One row of a command's options table: the flag, the environment variable, the default,
 * the parser and the description. The same row drives parsing (cli/parse-command.ts),
 * resolution (resolve.ts: flag > environment > default), `--help` and the README's tables
 * (render.ts), so an option is added in one place.
 */
export interface OptionRow {
  /** `value`: --flag VALUE; `list`: repeatable --flag VALUE; `switch`: --flag alone (no variable, default off). */
  readonly kind: 'value' | 'list' | 'switch';
  /** The long flag without its dashes. */
  readonly flag: string;
  readonly short?: string | undefined;
  /** Read when the flag is absent; an empty variable counts as unset. */
  readonly env?: string | undefined;
  /** The value's name in help and the README: URL, HOST:PORT, MS. */
  readonly placeholder?: string | undefined;
  /** The default as text, parsed like any other value. */
  readonly default?: string | undefined;
  /** Shown instead of a default that is worked out from other options (the option then resolves to undefined). */
  readonly defaultText?: string | undefined;
  readonly required?: boolean | undefined;
  readonly description: string;
  /** Turns the text into the value; throws ValueError with what is wrong. Absent for switches. */
  readonly parse?: ((raw: string) => unknown) | undefined;
}

/** A row whose resolved value has type T (the type is carried for Values<>; no such field exists at run time). */
export interface Option<T> extends OptionRow {
  readonly __value?: T;
}

export type Options = Readonly<Record<string, Option<unknown>>>;

/** The resolved, typed values of an options table. */
export type Values<O extends Options> = { readonly [K in keyof O]: O[K] extends Option<infer T> ? T : never };

type ValueRow<T> = Omit<OptionRow, 'kind' | 'parse'> & { readonly placeholder: string; readonly parse: (raw: string) => T };

export function value<T>(row: ValueRow<T> & { readonly default: string }): Option<T>;
export function value<T>(row: ValueRow<T> & { readonly required: true }): Option<T>;
export function value<T>(row: ValueRow<T>): Option<T | undefined>;
export function value<T>(row: ValueRow<T>): Option<T | undefined> {
  return { kind: 'value', ...row };
}

/** A repeatable flag. Its variable, when it has one, is read only when the flag is absent, and parsed as one value. */
export function list<T>(row: Omit<ValueRow<T>, 'default' | 'required'>): Option<T[]> {
  return { kind: 'list', ...row };
}

export function toggle(row: Pick<OptionRow, 'flag' | 'short' | 'description'>): Option<boolean> {
  return { kind: 'switch', ...row };
}
