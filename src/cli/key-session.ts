import { ConfigError } from '../config/config-error.ts';
import { type KeyField, KeyInputError } from '../keys/key-fields.ts';
import { type KeyEventLine, KeyService } from '../keys/key-service.ts';
import { openStore } from '../keys/open-store.ts';

/** The CLI's actor in the audit trail: whoever runs `keygate keys` on the store's host. */
export const CLI_ACTOR = 'cli';

/** The flag a key field comes from, for messages that name what the user typed. */
export const FLAG_OF_FIELD: Readonly<Record<KeyField, string>> = {
  type: '--type',
  referenceId: '--reference-id',
  name: '--name',
  description: '--description',
  roles: '--role',
  conditions: '--condition',
  expiresAt: '--expires-in',
  allowedOrigins: '--allow-origin',
  allowedRedirects: '--allow-redirect',
  allowReferenceId: '--allow-reference-id',
  createdBy: '--type',
  linkId: '--type',
};

/** The audit event as one JSON line on stderr (stdout stays the command's answer). */
function logEvent(line: KeyEventLine): void {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), msg: 'key event', ...line }) + '\n');
}

/**
 * Opens the store, runs `use` with the key service on it, and closes it. A KeyInputError
 * becomes a ConfigError naming the flag (exit 2).
 */
export async function withKeyService<T>(url: string, create: boolean, use: (service: KeyService) => Promise<T>, flags: Readonly<Partial<Record<KeyField, string>>> = {}): Promise<T> {
  const store = await openStore(url, { create });
  try {
    return await use(new KeyService(store, { onEvent: logEvent }));
  } catch (err) {
    if (err instanceof KeyInputError) {
      const flag = flags[err.field] ?? FLAG_OF_FIELD[err.field];
      throw new ConfigError(flag, `${flag}: ${err.message}`);
    }
    throw err;
  } finally {
    await store.close();
  }
}
