// A checked list through real HTTP with the WebAssembly proof on (the walk the process
// chose at start-up): a backend of the test's own sends its answer in many small writes,
// and whatever it hides a foreign item behind — an escaped key, a key inside a string, a
// nested owner, a chunk boundary inside the item — the client never receives it.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { demoDevices, page } from '../../src/demo/data.ts';
import type { Condition } from '../../src/pipeline/authorize.ts';
import { scanEngine } from '../../src/pipeline/proving/clean-scan.ts';
import { checkListFully } from '../../src/pipeline/proving/response-checks.ts';
import type { CompiledResource } from '../../src/policy/model.ts';
import { send } from '../helpers/http.ts';
import { type InProcessKeygate, startInProcess } from '../helpers/in-process.ts';

let kg: InProcessKeygate | undefined;
let upstream: Server | undefined;
afterEach(async () => {
  await kg?.close();
  kg = undefined;
  upstream?.closeAllConnections();
  upstream?.close();
  upstream = undefined;
});

/** A backend that answers every request with `body()`, written in pieces of `piece` bytes. */
async function backend(body: () => string, piece: number): Promise<string> {
  upstream = createServer((_req, res) => {
    const bytes = Buffer.from(body());
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(bytes.length) });
    let at = 0;
    const next = (): void => {
      if (at >= bytes.length) {
        res.end();
        return;
      }
      res.write(bytes.subarray(at, at + piece));
      at += piece;
      setImmediate(next);
    };
    next();
  });
  await new Promise<void>((r) => upstream!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
}

const alices = demoDevices(['alice'], 1000);
const devices = { name: 'devices', fields: new Map([['referenceId', ['referenceId']]]) } as unknown as CompiledResource;
const alice: Condition[] = [{ attribute: 'referenceId', values: ['alice'] }];
const devicesText = (items: readonly unknown[]): string => JSON.stringify(page(items, 1, 2000));

describe('a checked list through HTTP, the WebAssembly proof on', () => {
  it('the process proves with WebAssembly', () => {
    expect(scanEngine).toBe('wasm');
  });

  it('a clean 1,000-item answer in 1,000-byte writes is released whole, nothing dropped', async () => {
    kg = await startInProcess({ upstream: await backend(() => devicesText(alices), 1000) });
    const res = await send(kg.url, 'GET', '/v1/devices', { headers: { 'texture-api-key': kg.keys.alice } });
    expect(res.status).toBe(200);
    const got = JSON.parse(res.text) as { data: { id: string }[] };
    expect(got.data.map((d) => d.id)).toEqual(alices.map((d) => d.id));
    // Already in Keygate's list form: released as the backend's bytes.
    expect(res.text).toBe(devicesText(alices));
    expect(kg.access().at(-1)).toMatchObject({ status: 200 });
    expect(kg.access().at(-1)!.dropped ?? 0).toBe(0);
  });

  it.each([
    ['a plain foreign item', (bob: string) => bob],
    ['an owner key spelt with an escape', (bob: string) => bob.replace('"referenceId":"bob"', '"\\u0072eferenceId":"bob","id2":"x"').replace('{', '{"referenceId":"alice",')],
    ['an owner nested in an item', (bob: string) => bob.replace('"referenceId":"bob"', '"referenceId":"alice","peer":{"referenceId":"bob"}')],
    ['a look-alike owner key', (bob: string) => bob.replace('"referenceId":"bob"', '"referenceId":"alice","reference_id":"bob"')],
  ])('%s among 1,000 of alice’s, across 7-byte writes, is not released', async (_name, disguise) => {
    const bob = disguise(JSON.stringify(demoDevices(['bob'], 1)[0]));
    const text = devicesText(alices).replace('[{', `[${bob},{`);
    kg = await startInProcess({ upstream: await backend(() => text, 7) });
    const res = await send(kg.url, 'GET', '/v1/devices', { headers: { 'texture-api-key': kg.keys.alice } });
    expect(res.status).toBe(200);
    expect(res.text).not.toContain('dev_bob_1');
    const got = JSON.parse(res.text) as { data: { referenceId: string }[] };
    expect(got.data).toHaveLength(1000);
    expect(got.data.every((d) => d.referenceId === 'alice')).toBe(true);
    expect(kg.access().at(-1)).toMatchObject({ status: 200, dropped: 1 });
  });

  it('an owner named inside a string is only text: the item is kept, the answer whole', async () => {
    const odd = { ...alices[0], name: '"},{"referenceId":"bob"}' };
    kg = await startInProcess({ upstream: await backend(() => devicesText([odd, ...alices.slice(1)]), 13) });
    const res = await send(kg.url, 'GET', '/v1/devices', { headers: { 'texture-api-key': kg.keys.alice } });
    const got = JSON.parse(res.text) as { data: { name: string }[] };
    expect(got.data).toHaveLength(1000);
    expect(got.data[0]!.name).toBe(odd.name);
    expect(kg.access().at(-1)).toMatchObject({ status: 200 });
    expect(kg.access().at(-1)!.dropped ?? 0).toBe(0);
  });

  it.each([
    ['a full page (Keygate writes its own totals)', 1000],
    ['a page with room left (the backend’s bytes as they are)', 2000],
  ])('%s in 16 KB writes is written as the pieces it came in, byte for byte what the full check writes', async (_name, perPage) => {
    const text = JSON.stringify(page(alices, 1, perPage));
    kg = await startInProcess({ upstream: await backend(() => text, 16384) });
    const res = await send(kg.url, 'GET', '/v1/devices', { headers: { 'texture-api-key': kg.keys.alice } });
    const full = checkListFully({ status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from(text) }, devices, alice);
    expect(res.status).toBe(200);
    expect(res.text).toBe(full.body.toString());
    expect(res.headers['content-length']).toBe(String(full.body.length));
    if (perPage === 1000) expect(res.json).toMatchObject({ totalItems: 1001, totalPages: 2 });
  });

  it('a truncated answer is refused, not released', async () => {
    kg = await startInProcess({ upstream: await backend(() => devicesText(alices).slice(0, -3), 4096) });
    const res = await send(kg.url, 'GET', '/v1/devices', { headers: { 'texture-api-key': kg.keys.alice } });
    expect(res.status).toBe(502);
    expect(res.text).not.toContain('dev_alice_1');
  });
});
