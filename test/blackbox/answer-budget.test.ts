// Invariant 11 (no starvation), memory: the checked answers Keygate holds at once, from
// their first byte from the backend until their client has them, stay within
// --checked-answer-budget. One scoped user who asks for many large lists at once gets the
// largest of them cut (503 ANSWERS_SATURATED, Retry-After) while they arrive; another
// user's small lists all go through; nothing stays counted afterwards. Before, only
// --max-upstream-body bounded each answer, and one user's lists took as much memory as the
// backend could send (forty 12 MB lists: 1.25 GB).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createKey, createKeySet, errorBody, type KeyInfo, type KeySet, keyHeader, type Sidecar, send, sleep, startSidecar } from './harness.ts';

const BUDGET = 4 * 1024 * 1024;
/** Items in bob's large list: about 1.6 MB of JSON. */
const BIG_ITEMS = 24_000;
/** carol's one list: about 1 MB, sent at once. */
const CAROL_ITEMS = 15_000;

/** Devices by owner: bob's list is large and arrives in 64 KB parts every 15 ms; anyone else's is one short answer. */
/** `holdAfter`: bob's lists stop after that many bytes until `release` (null: they do not stop). */
const gate: { holdAfter: number | null; waiting: Array<() => void>; release(): void } = {
  holdAfter: null,
  waiting: [],
  release() {
    this.holdAfter = null;
    for (const w of this.waiting.splice(0)) w();
  },
};

async function slowListBackend(): Promise<{ url: string; aborted: () => number; close(): Promise<void> }> {
  let aborted = 0;
  const server: Server = createServer((req, res) => {
    req.resume();
    const ref = new URL(req.url ?? '/', 'http://b').searchParams.get('referenceId') ?? '';
    if (ref !== 'bob' && ref !== 'carol') {
      const text = JSON.stringify({ data: [{ id: `dev-${ref}-1`, referenceId: ref }], page: 1, perPage: 50, totalItems: 1, totalPages: 1 });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
      return;
    }
    const count = ref === 'carol' ? CAROL_ITEMS : BIG_ITEMS;
    const items = Array.from({ length: count }, (_, i) => ({ id: `dev-${ref}-${i}`, referenceId: ref, name: `a device of ${ref}` }));
    const body = Buffer.from(JSON.stringify({ data: items, page: 1, perPage: count, totalItems: count, totalPages: 1 }));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    if (ref === 'carol') {
      res.end(body);
      return;
    }
    let at = 0;
    let held = false;
    const timer = setInterval(() => {
      if (res.destroyed) {
        clearInterval(timer);
        return;
      }
      if (held) return;
      if (gate.holdAfter !== null && at >= gate.holdAfter) {
        held = true;
        gate.waiting.push(() => {
          held = false;
        });
        return;
      }
      res.write(body.subarray(at, at + 65536));
      at += 65536;
      if (at >= body.length) {
        clearInterval(timer);
        res.end();
      }
    }, 15);
    res.on('close', () => {
      clearInterval(timer);
      if (!res.writableFinished) aborted++;
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    aborted: () => aborted,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

let keys: KeySet;
let carol: KeyInfo;
let backend: Awaited<ReturnType<typeof slowListBackend>>;
let sidecar: Sidecar;
const metric = async (name: string): Promise<number> => {
  const text = (await send(sidecar.opsPort, { path: '/metrics' })).text;
  return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
};

beforeAll(async () => {
  keys = await createKeySet();
  carol = await createKey(keys.store, 'scoped', 'carol');
  backend = await slowListBackend();
  sidecar = await startSidecar({ upstream: backend.url, store: keys.store, env: { KEYGATE_CHECKED_ANSWER_BUDGET: String(BUDGET) } });
}, 60_000);
afterAll(async () => {
  await sidecar?.stop();
  await backend?.close();
});

describe('--checked-answer-budget', () => {
  test("one user's ten large lists at once: the largest arriving are cut with 503, the rest and another user's lists go through", async () => {
    const big = Array.from({ length: 10 }, () => send(sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(keys.bob), timeoutMs: 30_000 }));
    // While bob's lists arrive, alice's small ones keep coming.
    const small: Array<Awaited<ReturnType<typeof send>>> = [];
    for (let i = 0; i < 20; i++) {
      small.push(await send(sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(keys.alice), timeoutMs: 10_000 }));
      await sleep(25);
    }
    const answers = await Promise.all(big);
    const cut = answers.filter((r) => r.status === 503);
    const whole = answers.filter((r) => r.status === 200);
    console.log(`[observation] ten ${BIG_ITEMS}-item lists at --checked-answer-budget ${BUDGET}: ${whole.length} whole, ${cut.length} cut; backend saw ${backend.aborted()} aborted`);
    expect(cut.length + whole.length).toBe(10);
    expect(cut.length).toBeGreaterThan(0);
    for (const r of cut) {
      expect(errorBody(r).error.code).toBe('ANSWERS_SATURATED');
      expect(r.headers['retry-after']).toBe('1');
    }
    // Whatever was not cut is whole and checked.
    expect(whole.length).toBeGreaterThan(0);
    for (const r of whole) expect((JSON.parse(r.text) as { data: unknown[] }).data).toHaveLength(BIG_ITEMS);
    expect(small.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(backend.aborted()).toBeGreaterThanOrEqual(cut.length);
    expect(await metric('keygate_checked_answers_cut_total')).toBe(cut.length);
    // Nothing stays counted once the answers are over.
    expect(await metric('keygate_checked_answer_bytes')).toBe(0);
  }, 60_000);

  test('one at a time, the same lists all go through: the budget is on what is held at once', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await send(sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(keys.bob), timeoutMs: 30_000 });
      expect(r.status).toBe(200);
    }
    expect(await metric('keygate_checked_answer_bytes')).toBe(0);
  }, 60_000);

  test("another user's one list, larger than each of the flooding user's, is not the one cut: the party holding most loses its own", async () => {
    // Twelve of bob's lists, each stopped by the backend at 320 KB (3.75 MB in all), then
    // carol's 1 MB list at once: the budget is crossed while carol's arrives, the largest
    // answer arriving is carol's, and the party holding most is bob.
    gate.holdAfter = 5 * 65536;
    const flood = Array.from({ length: 12 }, () => send(sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(keys.bob), timeoutMs: 30_000 }));
    for (let i = 0; i < 100 && gate.waiting.length < 12; i++) await sleep(20);
    expect(gate.waiting).toHaveLength(12);
    const own = await send(sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(carol), timeoutMs: 30_000 });
    gate.release();
    const floods = await Promise.all(flood);
    console.log(
      `[observation] bob's twelve ${BIG_ITEMS}-item lists held at 320 KB beside carol's one ${CAROL_ITEMS}-item list: carol ${own.status}, bob ${JSON.stringify(floods.map((r) => r.status))}`,
    );
    expect(own.status, own.text.slice(0, 200)).toBe(200);
    expect((JSON.parse(own.text) as { data: unknown[] }).data).toHaveLength(CAROL_ITEMS);
    expect(floods.some((r) => r.status === 503)).toBe(true);
    expect(await metric('keygate_checked_answer_bytes')).toBe(0);
  }, 60_000);
});
