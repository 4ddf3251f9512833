import { KEYS_EVENTS, KEYS_ROTATE, KEYS_SHOW, KEYS_UPDATE } from '../config/commands.ts';
import { KeyNotFoundError, type KeyPatch } from '../keys/key-service.ts';
import { CLI_ACTOR, withKeyService } from './key-session.ts';
import { eventLine, keyText } from './key-text.ts';
import { parseOrHelp } from './parse-command.ts';
import { checkRoles } from './role-check.ts';
import { UsageError } from './usage-error.ts';

/** A key id the store does not have: said on stderr, exit 1 (as `keys revoke`); any other failure is rethrown. */
function notFound(err: unknown): undefined {
  if (!(err instanceof KeyNotFoundError)) throw err;
  process.stderr.write(`keygate: no key with id ${err.id}\n`);
  process.exitCode = 1;
  return undefined;
}

export async function show(argv: readonly string[]): Promise<void> {
  const parsed = parseOrHelp(KEYS_SHOW, argv);
  if (parsed === undefined) return;
  const id = parsed.positionals[0]!;
  const record = await withKeyService(parsed.values.store, false, (service) => service.get(id));
  if (record === undefined) {
    notFound(new KeyNotFoundError(id));
    return;
  }
  process.stdout.write(parsed.values.json ? JSON.stringify(record) + '\n' : keyText(record));
}

/** A list flag and its --clear-… switch: the list, [] when cleared, undefined when neither is given. */
function listOrClear<T>(values: readonly T[], clear: boolean, flag: string, clearFlag: string): T[] | undefined {
  if (values.length > 0 && clear) throw new UsageError(`give ${flag} or ${clearFlag}, not both`, 'keys update');
  if (clear) return [];
  return values.length > 0 ? [...values] : undefined;
}

export async function update(argv: readonly string[]): Promise<void> {
  const parsed = parseOrHelp(KEYS_UPDATE, argv);
  if (parsed === undefined) return;
  const id = parsed.positionals[0]!;
  const v = parsed.values;
  if (v.expiresInMs !== undefined && v.noExpiry) throw new UsageError('give --expires-in or --no-expiry, not both', 'keys update');
  const patch: Record<string, unknown> = {
    name: v.name,
    description: v.description,
    roles: listOrClear(v.roles, v.clearRoles, '--role', '--clear-roles'),
    conditions: listOrClear(v.conditions, v.clearConditions, '--condition', '--clear-conditions'),
    allowedOrigins: listOrClear(v.allowedOrigins, v.clearOrigins, '--allow-origin', '--clear-origins'),
    allowedRedirects: listOrClear(v.allowedRedirects, v.clearRedirects, '--allow-redirect', '--clear-redirects'),
    allowReferenceId: v.allowReferenceId,
    expiresInMs: v.expiresInMs,
    expiresAt: v.noExpiry ? null : undefined,
  };
  for (const k of Object.keys(patch)) if (patch[k] === undefined) delete patch[k];
  if (Object.keys(patch).length === 0) throw new UsageError('nothing to change: give at least one of the options (keygate keys update --help)', 'keys update');
  checkRoles(patch.roles as string[] | undefined, v.policies, (line) => process.stderr.write(line));
  const result = await withKeyService(
    v.store,
    false,
    async (service) => {
      try {
        return await service.update(id, patch as KeyPatch, CLI_ACTOR);
      } catch (err) {
        return notFound(err);
      }
    },
    { expiresAt: '--expires-in' },
  );
  if (result === undefined) return;
  if (v.json) process.stdout.write(JSON.stringify(result.record) + '\n');
  else {
    const fields = Object.keys(result.changed);
    process.stdout.write(`${fields.length === 0 ? 'Nothing changed' : `Changed ${fields.join(', ')}`} on ${id}.\n\n${keyText(result.record)}`);
  }
}

export async function rotate(argv: readonly string[]): Promise<void> {
  const parsed = parseOrHelp(KEYS_ROTATE, argv);
  if (parsed === undefined) return;
  const id = parsed.positionals[0]!;
  const v = parsed.values;
  const rotated = await withKeyService(v.store, false, async (service) => {
    try {
      return await service.rotate(id, v.graceMs ?? 0, CLI_ACTOR);
    } catch (err) {
      return notFound(err);
    }
  });
  if (rotated === undefined) return;
  if (v.json) {
    process.stdout.write(JSON.stringify({ ...rotated.record, key: rotated.key, previousKeyExpiresAt: rotated.previousExpiresAt }) + '\n');
    return;
  }
  const old = rotated.previousExpiresAt === null ? 'The previous secret no longer works.' : `The previous secret works until ${rotated.previousExpiresAt}, then is refused.`;
  process.stdout.write(`Rotated ${id}: its new secret is\n\n  ${rotated.key}\n\n${old}\nStore it now: Keygate keeps only its SHA-256 hash and cannot show it again.\n`);
}

export async function events(argv: readonly string[]): Promise<void> {
  const parsed = parseOrHelp(KEYS_EVENTS, argv);
  if (parsed === undefined) return;
  const id = parsed.positionals[0]!;
  const v = parsed.values;
  await withKeyService(v.store, false, async (service) => {
    try {
      for (let offset = 0; ; offset += 1000) {
        const page = await service.events(id, { offset, limit: 1000 });
        for (const e of page.items) process.stdout.write(v.json ? JSON.stringify(e) + '\n' : eventLine(e));
        if (offset + page.items.length >= page.total || page.items.length === 0) return;
      }
    } catch (err) {
      notFound(err);
    }
  });
}
