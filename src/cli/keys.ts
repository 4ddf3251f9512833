import { KEYS_CREATE, KEYS_EVENTS, KEYS_LIST, KEYS_REVOKE, KEYS_ROTATE, KEYS_SHOW, KEYS_UPDATE } from '../config/commands.ts';
import { ConfigError } from '../config/config-error.ts';
import { KeyNotFoundError } from '../keys/key-service.ts';
import { KeyInputError, type MintInput, mintKey } from '../keys/mint-key.ts';
import { openStore } from '../keys/open-store.ts';
import type { KeyStore } from '../keys/store.ts';
import { CLI_ACTOR, FLAG_OF_FIELD, withKeyService } from './key-session.ts';
import { events, rotate, show, update } from './keys-edit.ts';
import { listKeys } from './keys-list.ts';
import { parseOrHelp } from './parse-command.ts';
import { revocationNotice } from './revocation-notice.ts';
import { checkRoles } from './role-check.ts';
import { UsageError } from './usage-error.ts';

async function withStore<T>(url: string, create: boolean, use: (store: KeyStore) => Promise<T>): Promise<T> {
  const store = await openStore(url, { create });
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}

async function create(argv: readonly string[]): Promise<void> {
  const parsed = parseOrHelp(KEYS_CREATE, argv);
  if (parsed === undefined) return;
  const v = parsed.values;
  const input: MintInput = {
    type: v.type,
    referenceId: v.referenceId,
    name: v.name,
    description: v.description,
    roles: v.roles,
    conditions: v.conditions,
    expiresInMs: v.expiresInMs,
    allowedOrigins: v.allowedOrigins,
    allowedRedirects: v.allowedRedirects,
    allowReferenceId: v.allowReferenceId,
  };
  // Every field is checked before the store is opened (or made): a refused flag makes nothing.
  try {
    mintKey(input);
  } catch (err) {
    if (err instanceof KeyInputError) throw new ConfigError(FLAG_OF_FIELD[err.field], `${FLAG_OF_FIELD[err.field]}: ${err.message}`);
    throw err;
  }
  checkRoles(v.roles, v.policies, (line) => process.stderr.write(line));
  const minted = await withKeyService(v.store, true, (service) => service.create(input, CLI_ACTOR));
  const r = minted.record;
  if (v.json) {
    process.stdout.write(JSON.stringify({ ...r, key: minted.key }) + '\n');
    return;
  }
  process.stdout.write(
    `Created ${r.type} key ${r.id}${r.referenceId === null ? '' : ` for referenceId ${r.referenceId}`}\n\n  ${minted.key}\n\n` +
      'Store it now: Keygate keeps only its SHA-256 hash and cannot show it again.\n',
  );
}

async function list(argv: readonly string[]): Promise<void> {
  const parsed = parseOrHelp(KEYS_LIST, argv);
  if (parsed === undefined) return;
  const v = parsed.values;
  await withStore(v.store, false, (store) => listKeys(store, v, process.stdout));
}

async function revoke(argv: readonly string[]): Promise<void> {
  const parsed = parseOrHelp(KEYS_REVOKE, argv);
  if (parsed === undefined) return;
  const id = parsed.positionals[0]!;
  const v = parsed.values;
  const kind = await withKeyService(v.store, false, async (service) => {
    try {
      await service.revoke(id, CLI_ACTOR);
    } catch (err) {
      if (err instanceof KeyNotFoundError) return undefined;
      throw err;
    }
    return service.store.kind;
  });
  if (kind === undefined) {
    process.stderr.write(`keygate: no key with id ${id}\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(revocationNotice(id, kind, v.keyCacheTtlMs));
}

const SUBCOMMANDS: Record<string, (argv: readonly string[]) => Promise<void>> = { create, list, show, update, rotate, revoke, events };
const SPECS = [KEYS_CREATE, KEYS_LIST, KEYS_SHOW, KEYS_UPDATE, KEYS_ROTATE, KEYS_REVOKE, KEYS_EVENTS];
const NAMES = 'create, list, show, update, rotate, revoke or events';

export async function keysCommand(argv: readonly string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const run = sub === undefined || !Object.hasOwn(SUBCOMMANDS, sub) ? undefined : SUBCOMMANDS[sub];
  if (run !== undefined) return run(rest);
  if (sub === '--help' || sub === '-h') {
    process.stdout.write(`usage: keygate keys ${Object.keys(SUBCOMMANDS).join('|')} [options]\n\n${SPECS.map((c) => `  keygate ${c.name.padEnd(12)} ${c.summary}`).join('\n')}\n`);
    return;
  }
  throw new UsageError(sub === undefined ? `keys needs a command: ${NAMES}` : `unknown command "keys ${sub}" (${NAMES})`, 'keys');
}
