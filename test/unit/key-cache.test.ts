import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KeyCache } from '../../src/keys/key-cache.ts';
import { generateKey, hashKey } from '../../src/keys/key-format.ts';
import { mintKey } from '../../src/keys/mint-key.ts';
import { SqliteKeyStore } from '../../src/keys/sqlite-store.ts';
import type { KeyStore } from '../../src/keys/store.ts';
import { tempDir } from '../helpers/sidecar.ts';

async function storeWith(n = 1): Promise<{ store: SqliteKeyStore; keys: string[] }> {
  const store = new SqliteKeyStore(join(tempDir(), 'k.db'));
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    const { record, key } = mintKey({ type: 'server' });
    await store.insert(record, hashKey(key));
    keys.push(key);
  }
  return { store, keys };
}

/** The real SQLite store answering through a promise, as a networked store does. */
function asAsync(store: KeyStore, delayMs: number): KeyStore & { queries: number } {
  const wrapped = {
    kind: store.kind,
    queries: 0,
    findByHash(h: string) {
      wrapped.queries++;
      const r = store.findByHash(h);
      return new Promise((res) => setTimeout(() => res(r), delayMs));
    },
    insert: store.insert.bind(store),
    list: store.list.bind(store),
    revoke: store.revoke.bind(store),
    ping: store.ping.bind(store),
    close: store.close.bind(store),
  } as KeyStore & { queries: number };
  return wrapped;
}

describe('key cache', () => {
  it('answers a hit synchronously and queries the store once per TTL', async () => {
    const { store, keys } = await storeWith();
    const cache = new KeyCache(store, { positiveTtlMs: 60_000, positiveMax: 10, negativeTtlMs: 60_000, negativeMax: 10 });
    const h = hashKey(keys[0]!);
    expect(cache.lookup(h)).toMatchObject({ type: 'server' });
    for (let i = 0; i < 100; i++) expect(cache.lookup(h)).not.toBeInstanceOf(Promise);
    expect(cache.storeQueries).toBe(1);
  });

  it('one store query for 1000 concurrent misses of the same key', async () => {
    const { store, keys } = await storeWith();
    const slow = asAsync(store, 20);
    const cache = new KeyCache(slow);
    const h = hashKey(keys[0]!);
    const answers = await Promise.all(Array.from({ length: 1000 }, () => cache.lookup(h)));
    expect(answers.every((a) => a?.type === 'server')).toBe(true);
    expect(slow.queries).toBe(1);
  });

  it('a flood of unknown keys cannot evict known ones (separate bounded caches)', async () => {
    const { store, keys } = await storeWith();
    const cache = new KeyCache(store, { positiveTtlMs: 60_000, positiveMax: 10, negativeTtlMs: 60_000, negativeMax: 100 });
    const good = hashKey(keys[0]!);
    cache.lookup(good);
    for (let i = 0; i < 5000; i++) expect(cache.lookup(hashKey(generateKey('api_')))).toBeUndefined();
    // The negative table's capacity is negativeMax rounded up to a power of two.
    expect(cache.sizes.negative).toBeGreaterThanOrEqual(100);
    expect(cache.sizes.negative).toBeLessThanOrEqual(128);
    const before = cache.storeQueries;
    expect(cache.lookup(good)).toMatchObject({ type: 'server' });
    expect(cache.storeQueries).toBe(before);
  });

  it('a revoked key is refused once its positive entry expires (the revocation bound)', async () => {
    const { store, keys } = await storeWith();
    const cache = new KeyCache(store, { positiveTtlMs: 50, positiveMax: 10, negativeTtlMs: 50, negativeMax: 10 });
    const h = hashKey(keys[0]!);
    expect(cache.lookup(h)).toBeDefined();
    const [rec] = await store.list({ limit: 10 });
    await store.revoke(rec!.id);
    await new Promise((r) => setTimeout(r, 80));
    expect(cache.lookup(h)).toBeUndefined();
  });

  it('a store failure is a 503, never an admission, and is not cached', async () => {
    const { store, keys } = await storeWith();
    const cache = new KeyCache(store);
    await store.close();
    expect(() => cache.lookup(hashKey(keys[0]!))).toThrow(expect.objectContaining({ code: 'STORE_UNAVAILABLE', status: 503 }));
    expect(cache.sizes).toEqual({ positive: 0, negative: 0 });
  });
});
