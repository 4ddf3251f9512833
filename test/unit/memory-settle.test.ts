// When the memory settle collects: only once traffic has stopped (no collection, which
// stops the event loop, while requests are finishing or in flight), at most once per
// interval, and only when the heap holds more than the excess. The collection itself is
// V8's (test/blackbox/memory-settle.test.ts runs it in the real binary); here it is
// counted. Each check reads the finished count once, so the tests count checks by it.
import { afterEach, expect, it } from 'vitest';
import { DEFAULT_SETTLE, MemorySettle, type MemorySettleOptions } from '../../src/server/memory-settle.ts';

const FAST: MemorySettleOptions = { checkMs: 10, quietChecks: 2, quietRequests: 0, excessBytes: -1, minIntervalMs: 60_000, burstConnections: 0, largeExcessBytes: 2 ** 40 };

let settle: MemorySettle | undefined;
afterEach(() => settle?.stop());

interface Traffic {
  /** Requests finish between every two checks. */
  busy: boolean;
  inFlight: number;
  /** The most connections open at once that the next check reads (then back to 0). */
  peak?: number;
}

function counted(options: MemorySettleOptions, traffic: Traffic): { collections: () => number; checks: () => number } {
  let collections = 0;
  let checks = 0;
  let finished = 0;
  settle = new MemorySettle(
    {
      finished: () => {
        checks++;
        if (traffic.busy) finished++;
        return finished;
      },
      inFlight: () => traffic.inFlight,
      peakConnections: () => {
        const peak = traffic.peak ?? 0;
        traffic.peak = 0;
        return peak;
      },
      gc: () => void collections++,
      onSettle: () => {},
    },
    options,
  );
  settle.start();
  return { collections: () => collections, checks: () => checks };
}

async function until(ok: () => boolean, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

it('collects once traffic has been quiet for two checks, and not again within the interval', async () => {
  const traffic = { busy: true, inFlight: 0 };
  const c = counted(FAST, traffic);
  await until(() => c.checks() >= 10);
  expect(c.collections(), 'no collection while requests finish').toBe(0);
  traffic.busy = false;
  await until(() => c.collections() === 1);
  const at = c.checks();
  await until(() => c.checks() >= at + 10);
  expect(c.collections(), 'at most one per interval').toBe(1);
});

it('does not collect while a request is in flight, however long it takes', async () => {
  const traffic = { busy: false, inFlight: 1 };
  const c = counted(FAST, traffic);
  await until(() => c.checks() >= 10);
  expect(c.collections()).toBe(0);
  traffic.inFlight = 0;
  await until(() => c.collections() === 1);
});

it('does not collect when the heap has not grown by the excess', async () => {
  const c = counted({ ...FAST, excessBytes: 2 ** 40 }, { busy: false, inFlight: 0 });
  await until(() => c.checks() >= 10);
  expect(c.collections()).toBe(0);
});

it('settles a second burst that comes soon after a settle, once it too has gone quiet', async () => {
  // The bench's interleaved rounds: a settle while another target runs, then a burst a few
  // checks later. With an interval of 30 s that burst kept its memory past the bench's 5 s.
  const traffic = { busy: false, inFlight: 0 };
  const c = counted({ ...FAST, minIntervalMs: 30 }, traffic);
  await until(() => c.collections() === 1);
  traffic.busy = true;
  const at = c.checks();
  await until(() => c.checks() >= at + 2);
  traffic.busy = false;
  await until(() => c.collections() === 2);
});

it('by default never holds back a settle after a burst that lasted a check: the interval is within the quiet checks it needs', () => {
  expect(DEFAULT_SETTLE.minIntervalMs).toBeLessThanOrEqual(DEFAULT_SETTLE.checkMs * (DEFAULT_SETTLE.quietChecks + 1));
});

it('settles only after a burst of connections: ordinary load that grew the heap is left warm', async () => {
  const traffic: Traffic = { busy: true, inFlight: 0, peak: 10 };
  const c = counted({ ...FAST, burstConnections: 256, minIntervalMs: 0 }, traffic);
  await until(() => c.checks() >= 3);
  traffic.busy = false;
  const at = c.checks();
  await until(() => c.checks() >= at + 10);
  expect(c.collections(), 'a pause after 10 connections').toBe(0);
  traffic.busy = true;
  traffic.peak = 5_000;
  await until(() => c.checks() >= at + 12);
  traffic.busy = false;
  await until(() => c.collections() === 1);
  const after = c.checks();
  await until(() => c.checks() >= after + 10);
  expect(c.collections(), 'the burst was counted once: the next pause needs a burst of its own').toBe(1);
});

it('remembers a burst seen at any check since the last settle, not only at the last one', async () => {
  const traffic: Traffic = { busy: true, inFlight: 0, peak: 1_000 };
  const c = counted({ ...FAST, burstConnections: 256, minIntervalMs: 0 }, traffic);
  await until(() => c.checks() >= 6);
  expect(c.collections()).toBe(0);
  traffic.busy = false;
  await until(() => c.collections() === 1);
});

it('settles a large growth without a burst of connections', async () => {
  const c = counted({ ...FAST, burstConnections: 256, largeExcessBytes: -1 }, { busy: false, inFlight: 0, peak: 4 });
  await until(() => c.collections() === 1);
});
