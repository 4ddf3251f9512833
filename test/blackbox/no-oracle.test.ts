// Answers a scoped client reads: invariant 10 (no oracle: nothing it receives depends on
// another user's data) and invariant 5 with the answer read the way other clients read it
// (escaped or look-alike owner keys, numbers a float rounds). Each attack goes through
// real HTTP, against a backend that ignores the referenceId filter or writes odd JSON.
import { request } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { BIG_ALICE, BIG_BOB, type FrameworkBackend, startFramework } from './frameworks.ts';
import { createKey, createKeySet, DEVICES, type KeyInfo, type KeySet, keyHeader, type Res, type Sidecar, send, startSidecar } from './harness.ts';

let fw: FrameworkBackend;
let keys: KeySet;
let sidecar: Sidecar;
let bigOwner: KeyInfo;

beforeAll(async () => {
  fw = await startFramework();
  keys = await createKeySet();
  bigOwner = await createKey(keys.store, 'scoped', BIG_ALICE);
  sidecar = await startSidecar({ upstream: fw.url, store: keys.store });
});
afterAll(async () => {
  await sidecar?.stop();
  await fw?.close();
});
beforeEach(() => {
  fw.reset();
  fw.quirks = {};
});

function get(path: string, key: KeyInfo = keys.alice): Promise<Res> {
  return send(sidecar.proxyPort, { path, headers: keyHeader(key) });
}

/** Everything the client got, except what differs per request anyway (its id, the date). */
function seen(r: Res): string {
  const headers = Object.entries(r.headers)
    .filter(([h]) => h !== 'date' && h !== 'x-request-id')
    .sort();
  return JSON.stringify({ status: r.status, headers, body: r.text });
}

function metric(name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port: sidecar.opsPort, path: '/metrics' }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        let sum = 0;
        for (const line of text.split('\n')) if (line.startsWith(name)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
        resolve(sum);
      });
    })
      .on('error', reject)
      .end();
  });
}

describe("8. no count oracle: the answer is the same whether another user's items were dropped or never existed", () => {
  test("a backend that ignores the referenceId filter but honours ?serialNumber: bob's serial and an unknown one look the same", async () => {
    fw.quirks = { ignoreFilter: true };
    const bobs = await get('/v1/devices?serialNumber=SN-B1');
    const none = await get('/v1/devices?serialNumber=SN-NOBODY');
    expect(bobs.status).toBe(200);
    expect(bobs.text).not.toContain('dev-bob');
    expect(seen(bobs)).toBe(seen(none));
    expect(bobs.headers['x-keygate-filtered']).toBeUndefined();
    // The backend really did answer differently: bob's device (with its etag and count), then none.
    expect(fw.effects.map((e) => e.items)).toEqual([['dev-bob-1'], []]);
  });

  test('the same as from a backend that honours the filter', async () => {
    fw.quirks = { ignoreFilter: true };
    const ignored = await get('/v1/devices?serialNumber=SN-B1');
    fw.quirks = {};
    const honoured = await get('/v1/devices?serialNumber=SN-B1');
    expect(seen(ignored)).toBe(seen(honoured));
  });

  test.each([1, 2, 3])("page %i of a filtered list: bob's serial and an unknown one look the same", async (page) => {
    fw.quirks = { ignoreFilter: true };
    expect(seen(await get(`/v1/devices?serialNumber=SN-B2&page=${page}`))).toBe(seen(await get(`/v1/devices?serialNumber=SN-NOBODY&page=${page}`)));
  });

  test("a pretty-printed answer with bob's item between alice's: the same bytes as without it", async () => {
    const alice = DEVICES.filter((d) => d.referenceId === 'alice');
    const envelope = (data: unknown[]) => JSON.stringify({ data, page: 1, perPage: 50, totalItems: data.length, totalPages: 1, nextCursor: data.length }, null, 2);
    fw.respond = (rec) => (rec.url.startsWith('/v1/devices?') ? { body: envelope([alice[0], DEVICES[2], alice[1]]), headers: { etag: '"3"', 'x-total-count': '3' } } : undefined);
    const withBob = await get('/v1/devices');
    fw.respond = (rec) => (rec.url.startsWith('/v1/devices?') ? { body: envelope(alice), headers: { etag: '"2"', 'x-total-count': '2' } } : undefined);
    const without = await get('/v1/devices');
    expect(withBob.text).not.toContain('BOB');
    expect(seen(withBob)).toBe(seen(without));
    expect((withBob.json as { totalItems: number }).totalItems).toBe(2);
  });

  test('the dropped items are counted in the metric and the access line, not in the answer', async () => {
    fw.quirks = { ignoreFilter: true };
    const before = await metric('keygate_response_items_dropped_total');
    const r = await get('/v1/devices?serialNumber=SN-B1');
    expect(r.status).toBe(200);
    expect(await metric('keygate_response_items_dropped_total')).toBe(before + 1);
    // The access line is written when the answer ends; under load it may reach the log a moment after the client has it.
    const id = r.headers['x-request-id'];
    let line: Record<string, unknown> | undefined;
    for (let i = 0; i < 100 && line === undefined; i++) {
      line = sidecar.logs().find((l) => l.msg === 'access' && l.requestId === id);
      if (line === undefined) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(line?.dropped).toBe(1);
  });
});

describe('9. owner keys are compared unescaped', () => {
  const LIST = (items: string) => `{"data":[${items}],"page":1,"perPage":50,"totalItems":1,"totalPages":1}`;

  test.each([
    ['escaped key first (a first-wins client reads bob)', '{"id":"dev-bob-1","referenc\\u0065Id":"bob","referenceId":"alice","secret":"BOB_SECRET_1"}'],
    ['escaped key last', '{"id":"dev-bob-1","referenceId":"alice","\\u0072eferenceId":"bob","secret":"BOB_SECRET_1"}'],
    ['another owner nested behind an escaped key', '{"id":"dev-alice-1","referenceId":"alice","shared":{"referenc\\u0065Id":"bob","secret":"BOB_SECRET_2"}}'],
    ['a look-alike key a case-insensitive client reads', '{"id":"dev-bob-1","referenceId":"alice","ReferenceId":"bob","secret":"BOB_SECRET_1"}'],
    ['a key with a lone surrogate (a UTF-8 encoder drops or replaces it)', '{"id":"dev-bob-1","referenceId":"alice","referenceId\\ud800":"bob","secret":"BOB_SECRET_1"}'],
    ['a key with U+FFFD', '{"id":"dev-bob-1","referenceId":"alice","referenceId\\ufffd":"bob","secret":"BOB_SECRET_1"}'],
    ['a key with a noncharacter (a sanitiser strips it)', '{"id":"dev-bob-1","referenceId":"alice","referenceId\\uffff":"bob","secret":"BOB_SECRET_1"}'],
    ['a key with a blank filler that renders as nothing', '{"id":"dev-bob-1","referenceId":"alice","referenceId\\u3164":"bob","secret":"BOB_SECRET_1"}'],
  ])('list item: %s → dropped', async (_n, item) => {
    fw.respond = (rec) => (rec.url.startsWith('/v1/devices?') ? { body: LIST(item) } : undefined);
    const r = await get('/v1/devices');
    expect(r.status, r.text).toBe(200);
    expect(r.text).not.toContain('BOB_SECRET');
    expect((r.json as { data: unknown[] }).data).toEqual([]);
  });

  test.each([
    ['escaped owner key', '{"id":"dev-alice-1","referenc\\u0065Id":"bob","referenceId":"alice","secret":"BOB_SECRET_1"}'],
    ['nested owner behind an escaped key', '{"id":"dev-alice-1","referenceId":"alice","peer":{"referenc\\u0065Id":"bob","secret":"BOB_SECRET_2"}}'],
  ])('single answer: %s → 403', async (_n, body) => {
    fw.respond = (rec) => (rec.url === '/v1/devices/dev-alice-1' && rec.headers['x-keygate-purpose'] !== 'attribute-lookup' ? { body } : undefined);
    const r = await get('/v1/devices/dev-alice-1');
    expect(r.status, r.text).toBe(403);
    expect(r.text).not.toContain('BOB_SECRET');
  });

  test.each([
    [404, '{"error":"not found"}'],
    [410, '{"error":"gone"}'],
    [500, '{"error":"boom"}'],
    [204, ''],
  ])("a command read the backend answers %i (no command to prove) looks like one of bob's: the same 403, no lookup", async (status, body) => {
    const bobs = await get('/v1/commands/cmd-bob-1');
    expect(bobs.status, bobs.text).toBe(403);
    fw.reset();
    fw.respond = (rec) => (rec.url === '/v1/commands/cmd-nobody' ? { status, body, headers: { 'content-type': 'application/json' } } : undefined);
    const unknown = await get('/v1/commands/cmd-nobody');
    // The request id in a refusal's body differs per request anyway.
    const refusal = (r: Res): string => seen(r).replace(/\\"requestId\\":\\"[^\\]*\\"/, '');
    expect(refusal(unknown)).toBe(refusal(bobs));
    expect(fw.requests().map((r) => r.url)).toEqual(['/v1/commands/cmd-nobody']);
  });

  test.each([
    ['a nested device of bob', '{"id":"cmd-z","deviceId":"dev-alice-1","device":{"id":"dev-bob-1","referenceId":"bob","secret":"BOB_SECRET_1"}}'],
    ['bob as its own owner', '{"id":"cmd-z","deviceId":"dev-alice-1","referenceId":"bob","secret":"BOB_SECRET_1"}'],
    ['a nested owner behind an escaped key', '{"id":"cmd-z","deviceId":"dev-alice-1","history":[{"referenc\\u0065Id":"bob","secret":"BOB_SECRET_1"}]}'],
    ['a nested owner in a look-alike spelling', '{"id":"cmd-z","deviceId":"dev-alice-1","peer":{"reference_id":"bob","secret":"BOB_SECRET_1"}}'],
  ])('a command of alice’s device that holds %s → 403', async (_n, body) => {
    fw.respond = (rec) => (rec.url === '/v1/commands/cmd-z' ? { body } : undefined);
    const r = await get('/v1/commands/cmd-z');
    expect(r.status, r.text).toBe(403);
    expect(r.text).not.toContain('BOB_SECRET');
  });

  test('a command of alice’s device naming alice as its owner, at the top or nested, is released as the backend wrote it', async () => {
    const body = '{"id":"cmd-a","deviceId":"dev-alice-1","referenceId":"alice","device":{"id":"dev-alice-1","referenceId":"alice"}}';
    fw.respond = (rec) => (rec.url === '/v1/commands/cmd-a' ? { body } : undefined);
    const r = await get('/v1/commands/cmd-a');
    expect(r.status, r.text).toBe(200);
    expect(r.text).toBe(body);
  });

  test("a command whose deviceId is also spelt escaped (bob's first) → 403", async () => {
    fw.respond = (rec) => (rec.url === '/v1/commands/cmd-x' ? { body: '{"id":"cmd-x","devic\\u0065Id":"dev-bob-1","deviceId":"dev-alice-1","note":"BOB_CMD"}' } : undefined);
    const r = await get('/v1/commands/cmd-x');
    expect(r.status, r.text).toBe(403);
    expect(r.text).not.toContain('BOB_CMD');
  });
});

describe('4. numbers JavaScript rounds, in answers', () => {
  test("a command of device 9007199254740993 (bob's) is not released as one of …992 (alice's)", async () => {
    fw.respond = (rec) => (rec.url === '/v1/commands/cmd-big' ? { body: `{"id":"cmd-big","deviceId":${BIG_BOB},"note":"BOB_BIG_CMD"}` } : undefined);
    const r = await get('/v1/commands/cmd-big');
    expect(r.status, r.text).toBe(403);
    expect(r.text).not.toContain('BOB_BIG_CMD');
  });

  test("a list item owned by 9007199254740993 is not the key's (referenceId 9007199254740992)", async () => {
    fw.respond = (rec) =>
      rec.url.startsWith('/v1/devices?') ? { body: `{"data":[{"id":"d-big","referenceId":${BIG_BOB},"secret":"OTHER_OWNER_SECRET"}],"page":1,"perPage":50,"totalItems":1,"totalPages":1}` } : undefined;
    const r = await get('/v1/devices', bigOwner);
    expect(r.status, r.text).toBe(200);
    expect(r.text).not.toContain('OTHER_OWNER_SECRET');
  });
});
