// The key service on both stores: every change written with its audit event, rotation
// with a grace period, revocation once, expiries noticed once, lastUsedAt batched, and
// changes pushed to another store instance (another connection, as another process).
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { hashKey } from '../../src/keys/key-format.ts';
import { type KeyEventLine, KeyNotFoundError, KeyService, KeyStateError } from '../../src/keys/key-service.ts';
import { openStore } from '../../src/keys/open-store.ts';
import type { KeyChange, KeyStore } from '../../src/keys/store.ts';
import { pgSchemas } from '../helpers/pg-schemas.ts';
import { tempDir } from '../helpers/sidecar.ts';

const pg = pgSchemas('service');
const opened: KeyStore[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});
afterAll(() => pg.drop());

const STORES = [
  ['sqlite', () => `sqlite:${join(tempDir('kg-service-'), 'keys.db')}`],
  ['postgres', () => pg.url(`s${Math.random().toString(36).slice(2, 8)}`)],
] as const;

async function open(url: string): Promise<KeyStore> {
  const store = await openStore(url, { create: true });
  opened.push(store);
  return store;
}

describe.each(STORES)('key service on %s', (_kind, newUrl) => {
  it('creates, reads, lists and counts keys; every write leaves its event and its log line', async () => {
    const lines: KeyEventLine[] = [];
    const service = new KeyService(await open(newUrl()), { onEvent: (l) => lines.push(l) });
    const a = await service.create({ type: 'server', name: 'a' }, 'cli');
    const b = await service.create({ type: 'access-token', roles: ['reader'], conditions: { factoryId: ['f1'] } }, a.record.id);
    const c = await service.create({ type: 'scoped', referenceId: 'alice', allowedOrigins: ['https://app.example.com'] }, 'link:lnk_1');
    expect(await service.get(b.record.id)).toEqual(b.record);
    // Listed by createdAt, then id: keys made within one millisecond come in id order.
    const order = [a, b, c].map((k) => k.record).sort((x, y) => (x.createdAt === y.createdAt ? (x.id < y.id ? -1 : 1) : x.createdAt < y.createdAt ? -1 : 1));
    expect((await service.list({ limit: 10 })).items.map((k) => k.id)).toEqual(order.map((k) => k.id));
    expect((await service.list({ limit: 1, offset: 1 })).items.map((k) => k.id)).toEqual([order[1]!.id]);
    expect((await service.list({ limit: 10, createdBy: a.record.id })).items.map((k) => k.id)).toEqual([b.record.id]);
    expect(await service.list({ limit: 1, type: 'scoped', referenceId: 'alice' })).toMatchObject({ total: 1 });
    expect(lines.map((l) => [l.event, l.actor])).toEqual([
      ['created', 'cli'],
      ['created', a.record.id],
      ['created', 'link:lnk_1'],
    ]);
    const events = await service.events(b.record.id, { offset: 0, limit: 10 });
    expect(events.total).toBe(1);
    expect(events.items[0]).toMatchObject({ keyId: b.record.id, event: 'created', actor: a.record.id, changes: { type: 'access-token', roles: ['reader'], conditions: { factoryId: ['f1'] } } });
    expect(JSON.stringify(events)).not.toContain(b.key);
    expect(JSON.stringify(events)).not.toContain(hashKey(b.key));
  });

  it('updates only what differs and records from and to', async () => {
    const service = new KeyService(await open(newUrl()));
    const { record } = await service.create({ type: 'access-token', name: 'old', roles: ['reader'] }, 'cli');
    const { record: after, changed } = await service.update(record.id, { name: 'new', roles: ['reader'], conditions: { site: ['s1'] } }, 'key_actor');
    expect(changed).toEqual({ name: { from: 'old', to: 'new' }, conditions: { from: {}, to: { site: ['s1'] } } });
    expect(after).toMatchObject({ name: 'new', conditions: { site: ['s1'] } });
    expect(await service.get(record.id)).toEqual(after);
    expect((await service.update(record.id, { name: 'new' }, 'key_actor')).changed).toEqual({});
    expect((await service.events(record.id, { offset: 0, limit: 10 })).items.map((e) => e.event)).toEqual(['created', 'updated']);
    await expect(service.update('key_nope', { name: 'x' }, 'cli')).rejects.toBeInstanceOf(KeyNotFoundError);
    await expect(service.update(record.id, { allowedOrigins: ['https://a.example'] }, 'cli')).rejects.toThrow(/connect and scoped/);
  });

  it('rotates: a new secret for the same id; the previous one works until the grace ends, earlier ones never longer', async () => {
    const store = await open(newUrl());
    const service = new KeyService(store);
    const { record, key: first } = await service.create({ type: 'server', name: 'ci' }, 'cli');
    const r1 = await service.rotate(record.id, 3_600_000, 'cli');
    expect(r1.record.id).toBe(record.id);
    expect(r1.record.keyPrefix).toBe(r1.key.slice(0, 8));
    expect((await store.findByHash(hashKey(r1.key)))?.secretExpiresAt).toBeNull();
    const old = await store.findByHash(hashKey(first));
    expect(old?.id).toBe(record.id);
    expect(Date.parse(old!.secretExpiresAt!)).toBe(Date.parse(r1.previousExpiresAt!));
    // A second rotation with a shorter grace cuts the first secret's grace too.
    const r2 = await service.rotate(record.id, 1_000, 'cli');
    expect(Date.parse((await store.findByHash(hashKey(first)))!.secretExpiresAt!)).toBeLessThanOrEqual(Date.parse(r2.previousExpiresAt!));
    expect((await store.findByHash(hashKey(r1.key)))?.secretExpiresAt).toBe(r2.previousExpiresAt);
    // No grace: only the newest secret works from now on.
    const r3 = await service.rotate(record.id, 0, 'cli');
    expect(r3.previousExpiresAt).toBeNull();
    for (const k of [first, r1.key, r2.key]) expect(await store.findByHash(hashKey(k))).toBeUndefined();
    expect((await store.findByHash(hashKey(r3.key)))?.id).toBe(record.id);
    const rotated = (await service.events(record.id, { offset: 0, limit: 10 })).items.filter((e) => e.event === 'rotated');
    expect(rotated).toHaveLength(3);
    expect(rotated[0]!.changes).toMatchObject({ keyPrefix: { from: record.keyPrefix, to: r1.record.keyPrefix } });
    await expect(service.rotate(record.id, 8 * 86_400_000, 'cli')).rejects.toThrow(/grace/);
  });

  it('never lets a grace outlive the key', async () => {
    const service = new KeyService(await open(newUrl()));
    const { record } = await service.create({ type: 'server', expiresInMs: 60_000 }, 'cli');
    const r = await service.rotate(record.id, 3_600_000, 'cli');
    expect(r.previousExpiresAt).toBe(record.expiresAt);
  });

  it('revokes once: idempotent, one event, the first time kept; a revoked key is not changed or rotated', async () => {
    const lines: KeyEventLine[] = [];
    const store = await open(newUrl());
    const service = new KeyService(store, { onEvent: (l) => lines.push(l) });
    const { record, key } = await service.create({ type: 'server' }, 'cli');
    await service.rotate(record.id, 60_000, 'cli');
    const first = await service.revoke(record.id, 'key_admin');
    expect(first.revokedNow).toBe(true);
    const again = await service.revoke(record.id, 'cli');
    expect(again).toMatchObject({ revokedNow: false, record: { revokedAt: first.record.revokedAt } });
    expect((await service.events(record.id, { offset: 0, limit: 10 })).items.map((e) => [e.event, e.actor])).toEqual([
      ['created', 'cli'],
      ['rotated', 'cli'],
      ['revoked', 'key_admin'],
    ]);
    expect(lines.filter((l) => l.event === 'revoked')).toHaveLength(1);
    expect(await store.findByHash(hashKey(key))).toBeUndefined(); // the graced previous secret went with it
    await expect(service.update(record.id, { name: 'x' }, 'cli')).rejects.toBeInstanceOf(KeyStateError);
    await expect(service.rotate(record.id, 0, 'cli')).rejects.toBeInstanceOf(KeyStateError);
    await expect(service.revoke('key_nope', 'cli')).rejects.toBeInstanceOf(KeyNotFoundError);
  });

  it('notices an expiry once, whoever asks, and the events show it', async () => {
    const url = newUrl();
    const a = await open(url);
    const b = await open(url);
    const { record } = await new KeyService(a).create({ type: 'server', expiresInMs: 60_000 }, 'cli');
    const service = new KeyService(a, { now: () => new Date(Date.now() + 120_000) });
    const later = new Date(Date.now() + 120_000);
    const [x, y] = await Promise.all([a.recordExpiries(later), b.recordExpiries(later)]);
    expect([...x, ...y].map((e) => [e.keyId, e.event, e.actor])).toEqual([[record.id, 'expired', 'keygate']]);
    expect([...x, ...y][0]!.changes).toEqual({ expiresAt: record.expiresAt });
    expect(await a.recordExpiries(later)).toEqual([]);
    expect((await service.events(record.id, { offset: 0, limit: 10 })).items.map((e) => e.event)).toEqual(['created', 'expired']);
    await expect(service.update(record.id, { name: 'x' }, 'cli')).rejects.toBeInstanceOf(KeyStateError);
  });

  it('writes lastUsedAt only when it moves on by most of a minute', async () => {
    const store = await open(newUrl());
    const service = new KeyService(store);
    const { record } = await service.create({ type: 'server' }, 'cli');
    const t0 = Date.parse('2030-01-01T00:00:00Z');
    await store.touch([{ id: record.id, at: new Date(t0).toISOString() }]);
    await store.touch([{ id: record.id, at: new Date(t0 + 30_000).toISOString() }]);
    expect((await service.get(record.id))?.lastUsedAt).toBe(new Date(t0).toISOString());
    await store.touch([{ id: record.id, at: new Date(t0 + 60_000).toISOString() }]);
    expect((await service.get(record.id))?.lastUsedAt).toBe(new Date(t0 + 60_000).toISOString());
  });

  it('pushes changes made through another connection to onChange within a second', async () => {
    const url = newUrl();
    const reader = await open(url);
    const writer = new KeyService(await open(url));
    const seen: KeyChange[] = [];
    reader.onChange!((c) => seen.push(c));
    if (reader.kind === 'postgres') await vi.waitFor(() => expect((reader as unknown as { listening: boolean }).listening).toBe(true), { timeout: 5_000 });
    const { record } = await writer.create({ type: 'server' }, 'cli');
    const started = performance.now();
    await writer.revoke(record.id, 'cli');
    await vi.waitFor(() => expect(seen.some((c) => c.kind === 'keys' && c.ids.includes(record.id))).toBe(true), { timeout: 2_000, interval: 10 });
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});
