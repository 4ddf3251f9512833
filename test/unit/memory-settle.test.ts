// When the memory settle collects: only once traffic has stopped (no collection, which
// stops the event loop, while requests are finishing or in flight), at most once per
// interval, and only when the heap holds more than the excess. The collection itself is
// V8's (test/blackbox/memory-settle.test.ts runs it in the real binary); here it is
// counted. Each check reads the finished count once, so the tests count checks by it.
import { afterEach, expect, it } from 'vitest';
import { DEFAULT_SETTLE, MemorySettle, type MemorySettleOptions } from '../../src/server/memory-settle.ts';

const FAST: MemorySettleOptions = { checkMs: 10, quietChecks: 2, quietRequests: 0, excessBytes: -1, minIntervalMs: 60_000 };

let settle: MemorySettle | undefined;
afterEach(() => settle?.stop());

interface Traffic {
  /** Requests finish between every two checks. */
  busy: boolean;
  inFlight: number;
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
