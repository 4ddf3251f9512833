import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { NegativeCache } from '../../src/keys/negative-cache.ts';

const h = (s: string) => createHash('sha256').update(s).digest('hex');

describe('NegativeCache', () => {
  it('remembers an unknown key until its TTL ends, and nothing else', () => {
    const c = new NegativeCache(1000, 5000);
    c.add(h('a'), 0);
    expect(c.has(h('a'), 1)).toBe(true);
    expect(c.has(h('a'), 4999)).toBe(true);
    expect(c.has(h('a'), 5000)).toBe(false);
    expect(c.has(h('b'), 1)).toBe(false);
  });

  it('tells apart hashes that share their first 96 bits (all 128 compared)', () => {
    const c = new NegativeCache(64, 5000);
    const a = h('x');
    const b = a.slice(0, 24) + (a[24] === '0' ? '1' : '0') + a.slice(25);
    c.add(a, 0);
    expect(c.has(b, 1)).toBe(false);
    expect(c.has(a, 1)).toBe(true);
  });

  it('stays within its fixed capacity under a flood: recent entries win, size is bounded', () => {
    const c = new NegativeCache(1024, 60_000);
    for (let i = 0; i < 100_000; i++) c.add(h(`flood-${i}`), i / 1000);
    expect(c.capacity).toBe(1024);
    expect(c.size(100)).toBeLessThanOrEqual(1024);
    let recent = 0;
    for (let i = 99_900; i < 100_000; i++) if (c.has(h(`flood-${i}`), 100)) recent++;
    expect(recent).toBeGreaterThan(95);
    let old = 0;
    for (let i = 0; i < 1000; i++) if (c.has(h(`flood-${i}`), 100)) old++;
    expect(old).toBeLessThan(50);
  });

  it('re-adding refreshes the same slot instead of taking another', () => {
    const c = new NegativeCache(16, 1000);
    c.add(h('k'), 0);
    c.add(h('k'), 500);
    expect(c.size(600)).toBe(1);
    expect(c.has(h('k'), 1400)).toBe(true);
  });
});
