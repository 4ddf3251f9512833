import { DEFAULT_STORE, openStore } from '../keys/open-store.ts';
import { generateKey, hashKey, newKeyId } from '../keys/key-format.ts';
import { isKeyType, isValidReferenceId, KEY_TYPES, parseConditionArgs, prefixFor, REFERENCE_ID_RULE, type KeyRecord } from '../keys/key-record.ts';
import { parseDuration } from '../policy/drafts.ts';
import { flag, only, parseArgs, UsageError, type ParsedArgs } from './args.ts';
import { revocationNotice } from './revocation-notice.ts';

function storeUrl(args: ParsedArgs): string {
  return flag(args, 'store') ?? (process.env.KEYGATE_STORE || DEFAULT_STORE);
}

/** Creates a key record and its plaintext; the plaintext leaves this function once and is never stored. */
export function mintKey(input: { type: string; referenceId?: string | undefined; name?: string | undefined; roles?: string[]; conditions?: string[]; expiresInMs?: number | undefined }): { record: KeyRecord; key: string } {
  if (!isKeyType(input.type)) throw new UsageError(`--type must be one of ${KEY_TYPES.join(', ')}`);
  const type = input.type;
  if (type === 'scoped' && (input.referenceId === undefined || input.referenceId === '')) {
    throw new UsageError('a scoped key needs --reference-id (the end user it is scoped to)');
  }
  if (input.referenceId !== undefined && !isValidReferenceId(input.referenceId)) {
    throw new UsageError(`--reference-id must be ${REFERENCE_ID_RULE} (no spaces or control characters)`);
  }
  const roles = input.roles ?? [];
  const conditions = parseConditionArgs(input.conditions ?? []);
  if ((roles.length > 0 || Object.keys(conditions).length > 0) && type !== 'access-token' && type !== 'operator') {
    throw new UsageError('--role and --condition are for operator keys and access tokens; other key types take their roles from the policy');
  }
  const now = new Date();
  const record: KeyRecord = {
    id: newKeyId(),
    type,
    referenceId: input.referenceId ?? null,
    name: input.name ?? null,
    roles,
    conditions,
    createdAt: now.toISOString(),
    expiresAt: input.expiresInMs === undefined ? null : new Date(now.getTime() + input.expiresInMs).toISOString(),
    revokedAt: null,
  };
  return { record, key: generateKey(prefixFor(type)) };
}

async function create(args: ParsedArgs): Promise<void> {
  only(args, ['type', 'reference-id', 'name', 'store', 'json', 'role', 'condition', 'expires-in']);
  const type = flag(args, 'type');
  if (type === undefined) throw new UsageError(`--type is required (${KEY_TYPES.join(', ')})`);
  const expires = flag(args, 'expires-in');
  const expiresInMs = expires === undefined ? undefined : parseDuration(expires);
  if (expires !== undefined && (expiresInMs === undefined || expiresInMs <= 0)) throw new UsageError('--expires-in must be a duration like 30s, 15m, 12h or 30d');
  let minted;
  try {
    minted = mintKey({
      type,
      referenceId: flag(args, 'reference-id'),
      name: flag(args, 'name'),
      roles: args.flags.get('role') ?? [],
      conditions: args.flags.get('condition') ?? [],
      expiresInMs,
    });
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError((err as Error).message);
  }
  const store = await openStore(storeUrl(args));
  try {
    await store.insert(minted.record, hashKey(minted.key));
  } finally {
    await store.close();
  }
  const r = minted.record;
  if (flag(args, 'json') === 'true') {
    process.stdout.write(JSON.stringify({ ...r, key: minted.key }) + '\n');
    return;
  }
  process.stdout.write(
    `Created ${r.type} key ${r.id}${r.referenceId === null ? '' : ` for referenceId ${r.referenceId}`}\n\n  ${minted.key}\n\n` +
      'Store it now: Keygate keeps only its SHA-256 hash and cannot show it again.\n',
  );
}

async function list(args: ParsedArgs): Promise<void> {
  only(args, ['store', 'json']);
  const store = await openStore(storeUrl(args));
  let keys: KeyRecord[];
  try {
    keys = await store.list();
  } finally {
    await store.close();
  }
  if (flag(args, 'json') === 'true') {
    process.stdout.write(JSON.stringify(keys) + '\n');
    return;
  }
  const rows = [['ID', 'TYPE', 'REFERENCE ID', 'NAME', 'CREATED', 'STATUS']];
  for (const k of keys) {
    const status = k.revokedAt !== null ? `revoked ${k.revokedAt}` : k.expiresAt !== null && Date.parse(k.expiresAt) <= Date.now() ? 'expired' : 'active';
    rows.push([k.id, k.type, k.referenceId ?? '-', k.name ?? '-', k.createdAt, status]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  process.stdout.write(rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n');
}

async function revoke(args: ParsedArgs): Promise<void> {
  only(args, ['store', 'json']);
  const id = args.positionals[0];
  if (id === undefined || args.positionals.length > 1) throw new UsageError('usage: keygate keys revoke ID');
  const store = await openStore(storeUrl(args));
  let found: boolean;
  try {
    found = await store.revoke(id);
  } finally {
    await store.close();
  }
  if (!found) {
    process.stderr.write(`keygate: no key with id ${id}\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(revocationNotice(id, store.kind));
}

export async function keysCommand(argv: readonly string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const args = parseArgs(rest, ['json']);
  if (sub === 'create') return create(args);
  if (sub === 'list') return list(args);
  if (sub === 'revoke') return revoke(args);
  throw new UsageError('usage: keygate keys create|list|revoke');
}
