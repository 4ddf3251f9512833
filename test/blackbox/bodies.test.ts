// Bodies the policy reads are parsed strictly and the same bytes are forwarded.
import { deflateSync, gzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { errorBody, keyHeader, rawSend, send, slowUpload, useStack, writes } from './harness.ts';

const stack = useStack();

const PATH = '/v1/commands/thermostat/set-temperature';
const JSON_CT = { 'content-type': 'application/json' };

async function post(body: string | Buffer, headers: Record<string, string> = JSON_CT, key = stack.keys.alice) {
  return send(stack.sidecar.proxyPort, { method: 'POST', path: PATH, body, headers: { ...keyHeader(key), ...headers } });
}

describe('refused bodies (scoped key) → 4xx, nothing forwarded', () => {
  const DUPES: Array<[string, string]> = [
    ['own then foreign', '{"deviceId":"dev-alice-1","deviceId":"dev-bob-1"}'],
    ['foreign then own', '{"deviceId":"dev-bob-1","deviceId":"dev-alice-1"}'],
    ['own twice', '{"deviceId":"dev-alice-1","deviceId":"dev-alice-1"}'],
    ['escaped duplicate name \\u0049', '{"deviceId":"dev-alice-1","device\\u0049d":"dev-bob-1"}'],
    ['escaped duplicate name \\u0064', '{"\\u0064eviceId":"dev-bob-1","deviceId":"dev-alice-1"}'],
    ['nested duplicate', '{"deviceId":"dev-alice-1","payload":{"target":"a","target":"dev-bob-1"}}'],
    ['duplicate in array element', '{"deviceId":"dev-alice-1","steps":[{"d":"x","d":"y"}]}'],
  ];
  test.each(DUPES)('duplicate keys: %s → 400', async (_n, body) => {
    const r = await post(body);
    expect(r.status, r.text).toBe(400);
    errorBody(r);
    expect(writes(stack.backend)).toHaveLength(0);
  });

  test.each([
    ['text/plain', 'text/plain'],
    ['form', 'application/x-www-form-urlencoded'],
    ['multipart', 'multipart/form-data; boundary=x'],
    ['xml', 'application/xml'],
    ['json-ish suffix', 'application/jsonp'],
    ['utf-16 charset', 'application/json; charset=utf-16'],
  ])('content-type %s → 400/415', async (_n, ct) => {
    const r = await post('{"deviceId":"dev-alice-1"}', { 'content-type': ct });
    expect([400, 415], r.text).toContain(r.status);
    errorBody(r);
    expect(writes(stack.backend)).toHaveLength(0);
  });

  test('no content-type → 400/415', async () => {
    const r = await post('{"deviceId":"dev-alice-1"}', {});
    expect([400, 415], r.text).toContain(r.status);
    expect(writes(stack.backend)).toHaveLength(0);
  });

  test('form body naming a foreign device → refused', async () => {
    const r = await post('deviceId=dev-bob-1', { 'content-type': 'application/x-www-form-urlencoded' });
    expect([400, 403, 415]).toContain(r.status);
    expect(writes(stack.backend)).toHaveLength(0);
  });

  test.each([
    ['gzip', (b: string) => gzipSync(b)],
    ['deflate', (b: string) => deflateSync(b)],
    ['br', (b: string) => Buffer.from(b)],
    ['gzip, identity', (b: string) => gzipSync(b)],
    ['GZIP', (b: string) => gzipSync(b)],
  ] as const)('Content-Encoding: %s → 400/415', async (enc, f) => {
    const r = await post(f('{"deviceId":"dev-bob-1"}'), { ...JSON_CT, 'content-encoding': enc });
    expect([400, 415], r.text).toContain(r.status);
    expect(writes(stack.backend)).toHaveLength(0);
  });

  test('gzip body that decodes to own device is still refused (encoded bodies refused)', async () => {
    const r = await post(gzipSync('{"deviceId":"dev-alice-1"}'), { ...JSON_CT, 'content-encoding': 'gzip' });
    expect([400, 415], r.text).toContain(r.status);
    expect(writes(stack.backend)).toHaveLength(0);
  });

  test.each([
    ['trailing second object', '{"deviceId":"dev-alice-1"}{"deviceId":"dev-bob-1"}'],
    ['trailing garbage', '{"deviceId":"dev-alice-1"} x'],
    ['comments', '{"deviceId":"dev-alice-1" /* ,"deviceId":"dev-bob-1" */}'],
    ['single quotes', "{'deviceId':'dev-alice-1'}"],
    ['trailing comma', '{"deviceId":"dev-alice-1",}'],
    ['NaN', '{"deviceId":"dev-alice-1","v":NaN}'],
    ['truncated', '{"deviceId":"dev-alice-1"'],
    ['empty', ''],
  ])('non-JSON body: %s → 400', async (_n, body) => {
    const r = await post(body);
    expect(r.status, r.text).toBe(400);
    expect(writes(stack.backend)).toHaveLength(0);
  });

  test('oversized body (2 MiB) → 413, nothing forwarded', async () => {
    const body = `{"deviceId":"dev-alice-1","pad":"${'x'.repeat(2 * 1024 * 1024)}"}`;
    const r = await post(body);
    expect(r.status, r.text.slice(0, 200)).toBe(413);
    errorBody(r);
    expect(writes(stack.backend)).toHaveLength(0);
  });

  test('oversized chunked body (no content-length) → 413, nothing forwarded', async () => {
    const chunk = 'x'.repeat(64 * 1024);
    let payload = `POST ${PATH} HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${stack.keys.alice.key}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`;
    const first = '{"deviceId":"dev-alice-1","pad":"';
    payload += `${first.length.toString(16)}\r\n${first}\r\n`;
    for (let i = 0; i < 40; i++) payload += `${chunk.length.toString(16)}\r\n${chunk}\r\n`;
    payload += `2\r\n"}\r\n0\r\n\r\n`;
    const r = await rawSend(stack.sidecar.proxyPort, payload);
    expect(r.status, r.raw.slice(0, 300)).toBe(413);
    expect(writes(stack.backend)).toHaveLength(0);
  });

  test('deeply nested JSON does not crash the sidecar', async () => {
    const body = `{"deviceId":"dev-alice-1","x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const r = await post(body);
    expect(r.status).toBeLessThan(500);
    const again = await send(stack.sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(stack.keys.alice) });
    expect(again.status).toBe(200);
  });

  test('__proto__ smuggling of deviceId → refused', async () => {
    const r = await post('{"__proto__":{"deviceId":"dev-alice-1"}}');
    expect([400, 403]).toContain(r.status);
    expect(writes(stack.backend)).toHaveLength(0);
  });
});

// A client that asked to close the connection and is still uploading when Keygate refuses
// must still read the refusal: closing a socket with unread bytes makes the kernel reset
// it, and a reset can destroy the reply before the client reads it (the client sees
// ECONNRESET or EPIPE instead of a 4xx). Keygate reads and discards the rest first.
describe('a refusal reaches a client that is still uploading (Connection: close)', () => {
  const MIB = 1024 * 1024;
  const head = (headers: string): string => `POST ${PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n${headers}\r\n`;

  test.each([
    ['too large by content-length → 413', 413, () => head(`Texture-Api-Key: ${stack.keys.alice.key}\r\nContent-Length: ${2 * MIB}\r\n`), 2 * MIB, false],
    ['no key, with a body → 401', 401, () => head(`Content-Length: ${MIB}\r\n`), MIB, false],
    ['too large while chunked → 413', 413, () => head(`Texture-Api-Key: ${stack.keys.alice.key}\r\nTransfer-Encoding: chunked\r\n`), 2 * MIB, true],
  ] as const)('%s', async (_name, status, makeHead, bytes, chunked) => {
    const r = await slowUpload(stack.sidecar.proxyPort, makeHead(), bytes, chunked);
    expect(r.socketError, `reply so far: ${r.raw.slice(0, 200)}`).toBeUndefined();
    expect(r.status).toBe(status);
    expect(JSON.parse(r.body).error.status).toBe(status);
    expect(r.bodyBytesWritten).toBe(bytes);
    expect(writes(stack.backend)).toHaveLength(0);
  });
});

describe('accepted bodies are forwarded byte-identical', () => {
  test.each([
    ['compact', '{"deviceId":"dev-alice-1"}'],
    ['whitespace + key order + numbers', '\n  {  "payload" : { "t" : 21.50, "e": 1E3, "big": 12345678901234567890 } ,\r\n "deviceId":"dev-alice-1" }  \n'],
    ['unicode escapes', '{"deviceId":"dev-\\u0061lice-1","note":"caf\\u00e9 \\ud83d\\ude00 é"}'],
    ['charset param', '{"deviceId":"dev-alice-1"}'],
  ])('%s', async (name, body) => {
    const headers = name === 'charset param' ? { 'content-type': 'application/json; charset=utf-8' } : JSON_CT;
    const r = await post(body, headers);
    expect(r.status, r.text).toBe(201);
    const w = writes(stack.backend);
    expect(w).toHaveLength(1);
    expect(w[0]!.url).toBe(PATH);
    expect(w[0]!.body.equals(Buffer.from(body)), `got ${JSON.stringify(w[0]!.body.toString())}`).toBe(true);
    expect(w[0]!.headers['content-type']).toBe(headers['content-type']);
  });

  test('chunked valid body is forwarded with the same bytes', async () => {
    const body = '{"deviceId":"dev-alice-1","payload":{"mode":"eco"}}';
    const a = body.slice(0, 10);
    const b = body.slice(10);
    const payload = `POST ${PATH} HTTP/1.1\r\nHost: x\r\nTexture-Api-Key: ${stack.keys.alice.key}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${a.length.toString(16)}\r\n${a}\r\n${b.length.toString(16)}\r\n${b}\r\n0\r\n\r\n`;
    const r = await rawSend(stack.sidecar.proxyPort, payload);
    expect(r.status, r.raw).toBe(201);
    const w = writes(stack.backend);
    expect(w).toHaveLength(1);
    expect(w[0]!.body.toString()).toBe(body);
  });

  test('server key: large bodies stream through unchanged (not subject to scoped parsing)', async () => {
    const body = `{"deviceId":"dev-bob-1","pad":"${'y'.repeat(300_000)}"}`;
    const r = await post(body, JSON_CT, stack.keys.server);
    expect(r.status).toBe(201);
    expect(writes(stack.backend)[0]!.body.equals(Buffer.from(body))).toBe(true);
  });

  test('escaped own deviceId is judged on the decoded value (escaped foreign → 403)', async () => {
    const r = await post('{"deviceId":"dev-\\u0062ob-1"}');
    expect(r.status, r.text).toBe(403);
    expect(writes(stack.backend)).toHaveLength(0);
  });
});
