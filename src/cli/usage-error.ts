/** The command line itself is wrong: an unknown command or flag, a missing argument. Exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  /** The command whose `--help` the message points to, when known. */
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.command = command;
  }
}
