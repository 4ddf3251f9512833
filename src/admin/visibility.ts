import { KeygateError } from '../errors/keygate-error.ts';
import type { KeyRecord } from '../keys/key-record.ts';
import type { Page } from '../keys/key-service.ts';
import type { KeyFilter } from '../keys/store.ts';
import type { ServedRequest } from '../pipeline/served-handler.ts';
import type { CompiledPolicy, ValueTemplate } from '../policy/model.ts';
import { type AdminDeps, actorOf, evrythng } from './acting.ts';
import { mayActOn } from './escalation.ts';
import { reachesEverything } from './reach.ts';

/**
 * Which keys a key sees — lists, reads, reads the events of, changes, rotates, revokes:
 * never one it could not act on, whatever its grant of the endpoint says.
 * - A key that reaches everything (server and operator keys: every route without
 *   conditions, no key conditions, a grant without conditions) sees every key: each is
 *   within its power, so none needs judging and the store pages and counts.
 * - Any other key sees the keys it made that are still within its power (the test of
 *   checkActsOn: what each reaches on every route, judged by the policy in force), and
 *   itself. A user-bound token granted the endpoint sees none of the other users' keys,
 *   nor the server key, nor a key someone else made for its own user.
 * Why the keys it made, and not every key within its power: the list would otherwise judge
 * every stored key (a million scoped keys) on every request, and its answer and count would
 * move with keys others make. Scanning its own creations costs what the key itself grew, and
 * the count depends on nothing it cannot see.
 */
function seesEverything(request: ServedRequest): boolean {
  const actor = actorOf(request);
  return reachesEverything(actor.policy, actor.principal, actor.cap);
}

function isVisible(request: ServedRequest, record: KeyRecord): boolean {
  if (evrythng(request) && record.type !== 'access-token') return false;
  if (record.id === request.principal.id || seesEverything(request)) return true;
  return record.createdBy === request.principal.id && mayActOn(actorOf(request), record);
}

/** The key the route's `{id}` names, when the acting key may see it; otherwise 404 (a key it may not see does not exist to it). */
export async function visibleKey(deps: AdminDeps, request: ServedRequest): Promise<KeyRecord> {
  const id = request.decision.params.id ?? '';
  const record = await deps.keys.get(id);
  if (record === undefined || !isVisible(request, record)) throw new KeygateError('KEY_NOT_FOUND', { detail: `no key ${id} visible to ${request.principal.id}` });
  return record;
}

type KeyField = Extract<ValueTemplate, { keyField: unknown }>['keyField'];

const SCAN_BATCH = 100;
const REFERENCED = new WeakMap<CompiledPolicy, readonly KeyField[]>();

/** The key fields the policy's role conditions name (`{key.referenceId}`, …): with type, roles and conditions, all a decision reads of a key. */
function referencedFields(policy: CompiledPolicy): readonly KeyField[] {
  let out = REFERENCED.get(policy);
  if (out === undefined) {
    const found = new Set<KeyField>();
    for (const role of policy.roles.values()) for (const c of role.conditions) for (const v of c.values) if ('keyField' in v) found.add(v.keyField);
    REFERENCED.set(policy, (out = [...found]));
  }
  return out;
}

/** What decides a key's power under the policy: two keys with the same are judged alike. */
function powerOf(record: KeyRecord, fields: readonly KeyField[]): string {
  return JSON.stringify([record.type, record.roles, record.conditions, record.allowReferenceId, fields.map((f) => record[f])]);
}

/**
 * Judgements of the keys an actor made, by their power, kept while the actor's principal
 * and the policy are the ones in force (a changed key or policy is a new object, so a new
 * map): concurrent and repeated lists of a key that made many keys judge each power once.
 */
const JUDGED = new WeakMap<CompiledPolicy, WeakMap<object, Map<string, boolean>>>();

function judgementsOf(actor: ReturnType<typeof actorOf>): Map<string, boolean> {
  let byPrincipal = JUDGED.get(actor.policy);
  if (byPrincipal === undefined) JUDGED.set(actor.policy, (byPrincipal = new WeakMap()));
  let judged = byPrincipal.get(actor.principal);
  if (judged === undefined) byPrincipal.set(actor.principal, (judged = new Map()));
  return judged;
}

/** A scan yields to other requests after this much time on the event loop. */
const SLICE_MS = 2;

function yieldToOthers(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A page of the keys matching `filter` that the acting key sees, and how many it sees in
 * all: the total counts visible keys only, so neither the page nor the count says anything
 * about a key it does not see.
 */
export async function visiblePage(deps: AdminDeps, request: ServedRequest, filter: KeyFilter, offset: number, limit: number): Promise<Page<KeyRecord>> {
  if (seesEverything(request)) return deps.keys.list({ ...filter, offset, limit });
  const actor = actorOf(request);
  const fields = referencedFields(actor.policy);
  // The acting key sees itself (isVisible): it joins its creations in listing order.
  let self = await deps.keys.get(actor.principal.id);
  if (self !== undefined && (!matchesFilter(self, filter) || (evrythng(request) && self.type !== 'access-token'))) self = undefined;
  // Keys of one power (tokens minted alike) are judged once, under this grant's cap.
  const judged = judgementsOf(actor);
  const capKey = actor.cap === 'all' ? '' : JSON.stringify(actor.cap);
  let sliceStart = performance.now();
  const items: KeyRecord[] = [];
  let total = 0;
  const take = (record: KeyRecord): void => {
    if (total >= offset && items.length < limit) items.push(record);
    total++;
  };
  // It sees only what it made (and itself): asked for another maker's, only itself can match.
  if (filter.createdBy !== undefined && filter.createdBy !== actor.principal.id) {
    if (self !== undefined) take(self);
    return { items, total };
  }
  let afterId: string | undefined;
  for (;;) {
    const batch = await deps.keys.store.list({ ...filter, createdBy: actor.principal.id, afterId, limit: SCAN_BATCH });
    for (const record of batch) {
      if (self !== undefined && listsBefore(self, record)) {
        take(self);
        self = undefined;
      }
      const power = capKey + powerOf(record, fields);
      let may = judged.get(power);
      if (may === undefined) judged.set(power, (may = mayActOn(actor, record)));
      if (may) take(record);
      // Judging is CPU and the store's reads may be synchronous (node:sqlite): a key that
      // made many keys slows its own lists, not the other requests.
      if (performance.now() - sliceStart > SLICE_MS) {
        await yieldToOthers();
        sliceStart = performance.now();
      }
    }
    if (batch.length < SCAN_BATCH) {
      if (self !== undefined) take(self);
      return { items, total };
    }
    afterId = batch[batch.length - 1]!.id;
    await yieldToOthers();
    sliceStart = performance.now();
  }
}

/** The store's filter, on one record. */
function matchesFilter(record: KeyRecord, filter: KeyFilter): boolean {
  if (filter.type !== undefined && record.type !== filter.type) return false;
  if (filter.referenceId !== undefined && record.referenceId !== filter.referenceId) return false;
  if (filter.createdBy !== undefined && record.createdBy !== filter.createdBy) return false;
  return filter.revoked === undefined || filter.revoked === (record.revokedAt !== null);
}

/** The store's listing order: creation time, then id. */
function listsBefore(a: KeyRecord, b: KeyRecord): boolean {
  return a.createdAt < b.createdAt || (a.createdAt === b.createdAt && a.id < b.id);
}
