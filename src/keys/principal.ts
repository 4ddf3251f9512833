import type { KeyConditions, KeyRecord, KeyType } from './key-record.ts';

/** The authenticated caller as the pipeline sees it: what the key may be, never the secret. */
export interface Principal {
  readonly id: string;
  readonly type: KeyType;
  readonly referenceId: string | null;
  readonly name: string | null;
  readonly roles: readonly string[];
  readonly conditions: KeyConditions;
  /** Epoch ms, or Infinity: checked on every cache hit so an expiry needs no store query. */
  readonly expiresAtMs: number;
}

export function toPrincipal(record: KeyRecord): Principal {
  return {
    id: record.id,
    type: record.type,
    referenceId: record.referenceId,
    name: record.name,
    roles: record.roles,
    conditions: record.conditions,
    expiresAtMs: record.expiresAt === null ? Infinity : Date.parse(record.expiresAt),
  };
}
