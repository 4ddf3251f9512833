import { generateKey, newKeyId } from './key-format.ts';
import { isKeyType, isValidReferenceId, KEY_TYPES, parseConditionArgs, prefixFor, REFERENCE_ID_RULE, type KeyRecord } from './key-record.ts';

/** A key that cannot be made as asked; `field` names the input, so a caller can name its own flag. */
export class KeyInputError extends Error {
  override readonly name = 'KeyInputError';
  readonly field: 'type' | 'referenceId' | 'roles' | 'conditions';
  constructor(field: KeyInputError['field'], message: string) {
    super(message);
    this.field = field;
  }
}

export interface MintInput {
  readonly type: string;
  readonly referenceId?: string | undefined;
  readonly name?: string | undefined;
  readonly roles?: readonly string[] | undefined;
  readonly conditions?: readonly string[] | undefined;
  readonly expiresInMs?: number | undefined;
}

/** Creates a key record and its plaintext; the plaintext leaves this function once and is never stored. */
export function mintKey(input: MintInput): { record: KeyRecord; key: string } {
  if (!isKeyType(input.type)) throw new KeyInputError('type', `the key type must be one of ${KEY_TYPES.join(', ')}`);
  const type = input.type;
  if (type === 'scoped' && (input.referenceId === undefined || input.referenceId === '')) {
    throw new KeyInputError('referenceId', 'a scoped key needs a referenceId (the end user it is scoped to)');
  }
  if (input.referenceId !== undefined && !isValidReferenceId(input.referenceId)) {
    throw new KeyInputError('referenceId', `a referenceId is ${REFERENCE_ID_RULE} (no spaces or control characters)`);
  }
  const roles = [...(input.roles ?? [])];
  let conditions: Record<string, string[]>;
  try {
    conditions = parseConditionArgs(input.conditions ?? []);
  } catch (err) {
    throw new KeyInputError('conditions', (err as Error).message);
  }
  if ((roles.length > 0 || Object.keys(conditions).length > 0) && type !== 'access-token' && type !== 'operator') {
    throw new KeyInputError(roles.length > 0 ? 'roles' : 'conditions', 'roles and conditions are for operator keys and access tokens; other key types take their roles from the policy');
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
