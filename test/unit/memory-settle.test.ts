// When the memory settle collects: only once traffic has stopped (no collection, which
// stops the event loop, while requests are finishing or in flight), at most once per
// interval, and only when the heap holds more than the excess. The collection itself is
// V8's (test/blackbox/memory-settle.test.ts runs it in the real binary); here it is
// counted.
import { afterEach, expect, it } from 'vitest';
import { MemorySettle, type MemorySettleOptions } from '../../src/server/memory-settle.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const FAST: MemorySettleOptions = { checkMs: 20, quietChecks: 2, quietRequests: 0, excessBytes: -1, minIntervalMs: 60_000 };

let settle: MemorySettle | undefined;
afterEach(() => settle?.stop());

function counted(options: MemorySettleOptions, traffic: { finished: number; inFlight: number }): { collections: () => number } {
  let n = 0;
  settle = new MemorySettle({ finished: () => traffic.finished, inFlight: () => traffic.inFlight, gc: () => void n++, onSettle: () => {} }, options);
  settle.start();
  return { collections: () => n };
}

it('collects once traffic has been quiet for two checks, and not again within the interval', async () => {
  const traffic = { finished: 0, inFlight: 0 };
  const c = counted(FAST, traffic);
  const busy = setInterval(() => traffic.finished++, 5);
  await sleep(200);
  expect(c.collections(), 'no collection while requests finish').toBe(0);
  clearInterval(busy);
  await sleep(200);
  expect(c.collections()).toBe(1);
  await sleep(100);
  expect(c.collections(), 'at most one per interval').toBe(1);
});

it('does not collect while a request is in flight, however long it takes', async () => {
  const traffic = { finished: 0, inFlight: 1 };
  const c = counted(FAST, traffic);
  await sleep(200);
  expect(c.collections()).toBe(0);
  traffic.inFlight = 0;
  await sleep(200);
  expect(c.collections()).toBe(1);
});

it('does not collect when the heap has not grown by the excess', async () => {
  const c = counted({ ...FAST, excessBytes: 2 ** 40 }, { finished: 0, inFlight: 0 });
  await sleep(200);
  expect(c.collections()).toBe(0);
});
