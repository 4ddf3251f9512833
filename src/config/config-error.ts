/**
 * An option value Keygate refuses, from a flag or an environment variable. `source` is
 * what the user wrote it as (`--listen`, `KEYGATE_LISTEN`), and the message starts with
 * it, so every refusal says where to look. The CLI exits 2 on it.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly source: string;
  constructor(source: string, message: string) {
    super(message);
    this.source = source;
  }
}

/** Thrown by a value parser; the resolver adds the flag or variable the value came from. */
export class ValueError extends Error {
  override readonly name = 'ValueError';
}
