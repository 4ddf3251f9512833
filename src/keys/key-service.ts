import type { FieldChange, KeyEvent, KeyEventKind } from './key-event.ts';
import { checkAllowReferenceId, checkConditions, checkDescription, checkExpiresAt, checkName, checkOrigins, checkRedirects, checkRoles, KeyInputError } from './key-fields.ts';
import { generateKey, hashKey } from './key-format.ts';
import { inactiveAt, type KeyRecord, keyPrefixOf, prefixFor } from './key-record.ts';
import { type MintInput, mintKey } from './mint-key.ts';
import type { KeyChanges, KeyFilter, KeyListQuery, KeyStore, WriteGuard } from './store.ts';

/** No key has this id (or, to the management API, none the caller may see). */
export class KeyNotFoundError extends Error {
  override readonly name = 'KeyNotFoundError';
  readonly id: string;
  constructor(id: string) {
    super(`no key with id ${id}`);
    this.id = id;
  }
}

/** A revoked or expired key can be read and revoked, not changed or rotated: its life is over. */
/** A revoked or expired key can no longer be changed or rotated (409 KEY_NOT_ACTIVE). */
export function checkActive(record: KeyRecord, nowMs: number): void {
  const state = inactiveAt(record, nowMs);
  if (state !== null) throw new KeyStateError(record.id, state);
}

export class KeyStateError extends Error {
  override readonly name = 'KeyStateError';
  readonly state: 'revoked' | 'expired';
  constructor(id: string, state: 'revoked' | 'expired') {
    super(`key ${id} is ${state}: it can no longer be changed or rotated`);
    this.state = state;
  }
}

/** The longest rotation grace period: a week. */
export const MAX_GRACE_MS = 7 * 86_400_000;

/** The audit event as the service logs it, one JSON line per change (the store holds the same, with its seq). */
export interface KeyEventLine {
  readonly event: KeyEventKind;
  readonly keyId: string;
  readonly actor: string;
  readonly at: string;
  readonly changes: Readonly<Record<string, unknown>>;
}

export interface KeyServiceOptions {
  /** Called once per recorded change (serve logs it; the CLI writes it to stderr). */
  readonly onEvent?: (line: KeyEventLine) => void;
  readonly now?: () => Date;
}

/** What `create` takes: a key's settings; who creates it is the actor argument. */
export type CreateInput = Omit<MintInput, 'createdBy' | 'now'>;

/** What `update` may change; absent fields stay. `expiresInMs` is the CLI's way to say `expiresAt`. */
export interface KeyPatch {
  readonly name?: string | null;
  readonly description?: string | null;
  readonly roles?: readonly string[];
  readonly conditions?: readonly string[] | Readonly<Record<string, readonly string[]>>;
  readonly allowedOrigins?: readonly string[];
  readonly allowedRedirects?: readonly string[];
  readonly allowReferenceId?: boolean;
  readonly expiresAt?: string | null;
  readonly expiresInMs?: number;
}

export interface Page<T> {
  readonly items: readonly T[];
  readonly total: number;
}

/**
 * The one way to keys: the CLI, the management API and the Connect flow all create, read,
 * change, rotate and revoke keys here. Each change is checked field by field (key-fields.ts),
 * written with its audit event in one store transaction, and reported to `onEvent`.
 * Who may do what to which key (no escalation) is the caller's to decide before it asks:
 * the CLI is the host's operator; the API checks the acting key (src/admin/).
 */
export class KeyService {
  readonly store: KeyStore;
  readonly #onEvent: (line: KeyEventLine) => void;
  readonly #now: () => Date;

  constructor(store: KeyStore, options: KeyServiceOptions = {}) {
    this.store = store;
    this.#onEvent = options.onEvent ?? (() => undefined);
    this.#now = options.now ?? (() => new Date());
  }

  #log(event: KeyEventKind, keyId: string, actor: string, at: string, changes: Readonly<Record<string, unknown>>): void {
    try {
      this.#onEvent({ event, keyId, actor, at, changes });
    } catch {
      // Logging must not undo a change already committed.
    }
  }

  /**
   * Makes a key; the plaintext is returned here once and never stored. `vet` sees the
   * record before it is written and may refuse it (the API's no-escalation check).
   */
  async create(input: CreateInput, actor: string, vet?: (record: KeyRecord) => void, guard?: WriteGuard): Promise<{ record: KeyRecord; key: string }> {
    const minted = mintKey({ ...input, createdBy: actor, now: this.#now() });
    vet?.(minted.record);
    await this.store.insert(minted.record, hashKey(minted.key), guard);
    const r = minted.record;
    this.#log('created', r.id, actor, r.createdAt, { type: r.type, referenceId: r.referenceId, keyPrefix: r.keyPrefix, linkId: r.linkId });
    return minted;
  }

  get(id: string): Promise<KeyRecord | undefined> {
    return this.store.get(id);
  }

  async #existing(id: string): Promise<KeyRecord> {
    const record = await this.store.get(id);
    if (record === undefined) throw new KeyNotFoundError(id);
    return record;
  }

  #checkActive(record: KeyRecord): void {
    checkActive(record, this.#now().getTime());
  }

  /** One page (by offset) and how many keys match in all. */
  async list(query: KeyListQuery): Promise<Page<KeyRecord>> {
    const filter: KeyFilter = { type: query.type, referenceId: query.referenceId, revoked: query.revoked, createdBy: query.createdBy };
    const total = await this.store.count(filter);
    // A page past the end is known empty from the count: no offset scan over keys that are not there.
    const items = (query.offset ?? 0) >= total ? [] : await this.store.list(query);
    return { items, total };
  }

  /**
   * The key as it would be after `patch`, every field checked against the key's type;
   * nothing is written. The API judges this (no escalation) before `update` writes it.
   */
  async preview(id: string, patch: KeyPatch): Promise<{ before: KeyRecord; after: KeyRecord; changes: KeyChanges }> {
    const before = await this.#existing(id);
    this.#checkActive(before);
    const changes = this.#changes(before, patch);
    return { before, after: { ...before, ...changes } as KeyRecord, changes };
  }

  #changes(record: KeyRecord, patch: KeyPatch): KeyChanges {
    const type = record.type;
    const now = this.#now().getTime();
    const out: Record<string, unknown> = {};
    if (patch.name !== undefined) out.name = checkName(patch.name);
    if (patch.description !== undefined) out.description = checkDescription(patch.description);
    if (patch.roles !== undefined) out.roles = checkRoles(type, patch.roles);
    if (patch.conditions !== undefined) out.conditions = checkConditions(type, patch.conditions);
    if (patch.allowedOrigins !== undefined) out.allowedOrigins = checkOrigins(type, patch.allowedOrigins);
    if (patch.allowedRedirects !== undefined) out.allowedRedirects = checkRedirects(type, patch.allowedRedirects);
    if (patch.allowReferenceId !== undefined) out.allowReferenceId = checkAllowReferenceId(type, patch.allowReferenceId);
    if (patch.expiresAt !== undefined && patch.expiresInMs !== undefined) throw new KeyInputError('expiresAt', 'give an expiry once: as a time or as a duration');
    if (patch.expiresAt !== undefined) out.expiresAt = checkExpiresAt(patch.expiresAt, now);
    if (patch.expiresInMs !== undefined) out.expiresAt = new Date(now + patch.expiresInMs).toISOString();
    return out as KeyChanges;
  }

  /**
   * Changes a key's settings (not its type, referenceId or secret); records what changed.
   * `guard` sees the key as it will be written, inside the write (KeyStore.update).
   */
  async update(id: string, patch: KeyPatch, actor: string, guard?: WriteGuard): Promise<{ record: KeyRecord; changed: Readonly<Record<string, FieldChange>> }> {
    const { changes } = await this.preview(id, patch);
    const result = await this.store.update(id, changes, actor, guard);
    if (result === undefined) throw new KeyNotFoundError(id);
    if (Object.keys(result.changed).length > 0) this.#log('updated', id, actor, result.record.updatedAt, result.changed);
    return result;
  }

  /**
   * A new secret for the same key (id and settings kept); the current secret keeps working
   * for `graceMs` (at most a week, and never past the key's own expiry), then is refused.
   */
  async rotate(id: string, graceMs: number, actor: string, guard?: WriteGuard): Promise<{ record: KeyRecord; key: string; previousExpiresAt: string | null }> {
    if (!Number.isInteger(graceMs) || graceMs < 0 || graceMs > MAX_GRACE_MS) throw new RangeError(`the grace period must be 0 to ${MAX_GRACE_MS / 1000} seconds`);
    const before = await this.#existing(id);
    this.#checkActive(before);
    const now = this.#now().getTime();
    const keyEnds = before.expiresAt === null ? Infinity : Date.parse(before.expiresAt);
    const previousExpiresAt = graceMs === 0 ? null : new Date(Math.min(now + graceMs, keyEnds)).toISOString();
    const key = generateKey(prefixFor(before.type));
    const record = await this.store.rotate(id, { keyHash: hashKey(key), keyPrefix: keyPrefixOf(key), previousExpiresAt }, actor, guard);
    if (record === undefined) throw new KeyNotFoundError(id);
    this.#log('rotated', id, actor, record.updatedAt, { keyPrefix: { from: before.keyPrefix, to: record.keyPrefix }, previousSecretExpiresAt: previousExpiresAt });
    return { record, key, previousExpiresAt };
  }

  /** Revokes a key; revoking it again changes nothing (the first time stands). */
  async revoke(id: string, actor: string): Promise<{ record: KeyRecord; revokedNow: boolean }> {
    const before = await this.#existing(id);
    if (!(await this.store.revoke(id, actor))) throw new KeyNotFoundError(id);
    const record = before.revokedAt === null ? await this.#existing(id) : before;
    const revokedNow = before.revokedAt === null;
    if (revokedNow) this.#log('revoked', id, actor, record.revokedAt ?? this.#now().toISOString(), {});
    return { record, revokedNow };
  }

  /** The key's audit trail, oldest first; its expiry is recorded first if it has passed unnoticed. */
  async events(id: string, page: { offset: number; limit: number }): Promise<Page<KeyEvent>> {
    await this.#existing(id);
    const noticed = await this.store.recordExpiries(this.#now());
    for (const e of noticed) this.#log(e.event, e.keyId, e.actor, e.at, e.changes);
    const [items, total] = await Promise.all([this.store.events(id, page), this.store.countEvents(id)]);
    return { items, total };
  }
}
