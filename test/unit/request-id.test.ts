import { describe, expect, it } from 'vitest';
import { nextRequestId } from '../../src/server/request-id.ts';

describe('nextRequestId', () => {
  it('is the process prefix and 96 random bits in hex, unique across many batches', () => {
    const ids = Array.from({ length: 5000 }, nextRequestId); // about 20 refills of the random pool
    const prefix = ids[0]!.slice(0, 9);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{24}$/);
    expect(ids.every((id) => id.startsWith(prefix))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('counts nothing: consecutive ids are not in order', () => {
    const tails = Array.from({ length: 40 }, () => nextRequestId().slice(9));
    expect(tails.every((s, i) => i === 0 || s > tails[i - 1]!)).toBe(false);
    // Every hex digit shows up at every position over many ids (a counter's high digits would not move).
    const seen = Array.from({ length: 24 }, () => new Set<string>());
    for (let i = 0; i < 2000; i++) {
      const tail = nextRequestId().slice(9);
      for (let j = 0; j < tail.length; j++) seen[j]!.add(tail[j]!);
    }
    expect(seen.every((s) => s.size === 16)).toBe(true);
  });
});
