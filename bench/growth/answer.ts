import { join } from 'node:path';
import { request } from 'undici';
import { seedBenchKeys } from '../keys.ts';
import { type LoadCase, onlyOwnItems } from '../scenarios.ts';
import { startKeygate, startListBackend, startUndiciForwarder, type Target } from '../targets.ts';
import { measureAxis } from './measure.ts';
import { type AxisContext, type AxisResult, count, type GrowthRow, target, times } from './model.ts';

/** The issue's targets for the answer axis. */
const EXTRA_US_PER_ITEM = 0.2;
const MIN_RATIO_AT_LARGEST = 0.8;

/**
 * The backend's own answer for alice's first `n` devices, checked once in full (only
 * alice's, exactly n). Under load the forwarder must relay these very bytes, and Keygate,
 * having checked them, their items unchanged in its own list envelope. A
 * string comparison keeps the load generator from parsing 1,000-item lists, which on the
 * shared cores would have made it the limit of both targets.
 */
async function backendAnswer(backend: Target, n: number): Promise<string> {
  const res = await request(`${backend.url}/v1/devices?referenceId=alice&perPage=${n}`);
  const body = await res.body.text();
  const wrong = res.statusCode !== 200 ? `status ${res.statusCode}` : onlyOwnItems('alice')(body);
  const items = (JSON.parse(body) as { data?: unknown[] }).data?.length;
  if (wrong !== undefined || items !== n) throw new Error(`list backend: alice's ${n}-item page is wrong (${wrong ?? `${items} items`})`);
  return body;
}

const sameAs =
  (expected: string, what: string) =>
  (body: string): string | undefined =>
    body === expected ? undefined : `not ${what} (${body.length} bytes, expected ${expected.length})`;

/**
 * Keygate writes a checked list itself: the backend's item bytes, then an envelope whose
 * totals it derives from the items it kept (see src/pipeline/proving/list-render.ts). So its answer
 * must hold the backend's `{"data":[…]` bytes exactly, followed by that envelope. That is
 * checked once, on Keygate's first answer, and every answer under load must then be that
 * answer byte for byte: the same whole-string comparison as the forwarder's. (Checking
 * each answer with `startsWith` cost the load generator about twice what `===` does at
 * 1,000 items, on the cores Keygate shares with it, so Keygate was measured against a
 * slower client than the forwarder: 0.27x instead of 0.6x in one run.)
 */
async function keygateAnswer(keygate: Target, key: string, expected: string, n: number): Promise<string> {
  const res = await request(`${keygate.url}/v1/devices?perPage=${n}`, { headers: { 'texture-api-key': key } });
  const body = await res.body.text();
  const end = expected.lastIndexOf('],"page":');
  if (end === -1) throw new Error(`list backend: alice's ${n}-item page has no "page" after its data`);
  const items = expected.slice(0, end + 1);
  if (res.statusCode !== 200 || !body.startsWith(items) || !body.startsWith(',"page":1,', items.length)) {
    throw new Error(`Keygate's ${n}-item answer is not the backend's items in Keygate's list envelope (status ${res.statusCode}, ${body.length} bytes)`);
  }
  return body;
}

/** Scoped lists of growing length, checked item by item by Keygate, beside the forwarder relaying the same bytes. */
export async function answerAxis(ctx: AxisContext): Promise<AxisResult> {
  const sizes = ctx.opts.growthItems;
  const prefix = '[answer]';
  const backend = await startListBackend(sizes.at(-1)!);
  const undici = await startUndiciForwarder(backend.url);
  const storePath = join(ctx.dir, 'answer-keys.db');
  const keys = await seedBenchKeys(storePath);
  const keygate = await startKeygate({ upstream: backend.url, storePath, workers: ctx.opts.workers });
  try {
    const pairs: Array<{ n: number; forwarder: LoadCase; keygate: LoadCase }> = [];
    for (const n of sizes) {
      const answer = await backendAnswer(backend, n);
      const keygateBytes = await keygateAnswer(keygate, keys.alice, answer, n);
      const common = { method: 'GET' as const, expectStatus: 200 };
      pairs.push({
        n,
        forwarder: {
          ...common,
          id: `answer-${n}-undici`,
          label: `fwd ${count(n)} items`,
          kind: 'baseline',
          check: sameAs(answer, `the backend's ${n}-item answer`),
          target: undici,
          path: `/v1/devices?referenceId=alice&perPage=${n}`,
          headers: {},
        },
        keygate: {
          ...common,
          id: `answer-${n}-keygate`,
          label: `kg ${count(n)} items`,
          kind: 'keygate',
          check: sameAs(keygateBytes, `Keygate's checked ${n}-item answer`),
          target: keygate,
          path: `/v1/devices?perPage=${n}`,
          headers: { 'texture-api-key': keys.alice },
        },
      });
    }
    const load = { connections: ctx.opts.connections, backendPids: backend.pids };
    const summaries = await measureAxis(ctx, { prefix, cases: pairs.flatMap((p) => [p.forwarder, p.keygate]), loadFor: () => load });
    const rows: GrowthRow[] = pairs.map((p) => {
      const kg = summaries.get(p.keygate.id)!;
      const fw = summaries.get(p.forwarder.id)!;
      return {
        axis: 'answer',
        size: p.n,
        label: `${count(p.n)} item${p.n === 1 ? '' : 's'}`,
        keygate: kg,
        forwarder: fw,
        ratio: kg.median.rps / fw.median.rps,
        extra: { extraCpuUs: kg.median.cpuUsPerRequest - fw.median.cpuUsPerRequest },
      };
    });
    const first = rows[0]!;
    const last = rows.at(-1)!;
    // Keygate's CPU per request beyond the forwarder's, per item added: what checking costs.
    const perItem = (last.extra.extraCpuUs! - first.extra.extraCpuUs!) / (last.size - first.size);
    return {
      axis: 'answer',
      title: 'scoped list answer size (checked)',
      rows,
      measured: `extra CPU **${perItem.toFixed(2)} µs per item**; Keygate ÷ forwarder ${rows.map((r) => times(r.ratio)).join(' / ')} at ${rows.map((r) => count(r.size)).join(' / ')} items`,
      targets: [
        target(
          'answer-us-per-item',
          `answer check: Keygate's extra CPU per list item (${count(first.size)} → ${count(last.size)} items)`,
          perItem,
          `${perItem.toFixed(2)} µs`,
          `≤ ${EXTRA_US_PER_ITEM} µs`,
          (v) => v <= EXTRA_US_PER_ITEM,
        ),
        target('answer-ratio-largest', `Keygate ÷ forwarder at ${count(last.size)} items`, last.ratio, times(last.ratio), `≥ ${MIN_RATIO_AT_LARGEST}×`, (v) => v >= MIN_RATIO_AT_LARGEST),
      ],
      notes: [],
      otherErrors: 0,
      otherErrorSamples: [],
    };
  } finally {
    await Promise.all([keygate.stop(), undici.stop(), backend.stop()]);
  }
}
