/**
 * A key whose own conditions and its role's cannot both hold (an access token bound to
 * alice by its role's `{key.referenceId}`, with the key condition `referenceId: [bob]`)
 * reaches nothing: 403, and the backend receives nothing — before, its list went out with
 * an empty filter (`?referenceId=`), which many backends read as no filter at all.
 */
import { describe, expect, it } from 'vitest';
import { errorBody, keyHeader, send, useStack } from './harness.ts';

const stack = useStack();

async function token(body: unknown): Promise<string> {
  const text = JSON.stringify(body);
  const r = await send(stack.sidecar.proxyPort, {
    method: 'POST',
    path: '/v1/api-keys',
    headers: { ...keyHeader(stack.keys.server), 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) },
    body: text,
  });
  expect(r.status, r.text).toBe(201);
  return (r.json as { key: string }).key;
}

describe('conditions no value can meet', () => {
  it('are 403 on every route they guard, and nothing reaches the backend (a list, a device of either user)', async () => {
    const key = await token({ type: 'access-token', roles: ['device-owner'], referenceId: 'alice', conditions: { referenceId: ['bob'] } });
    const list = await send(stack.sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(key) });
    expect(list.status, list.text).toBe(403);
    expect(errorBody(list).error.code).toBe('RESOURCE_NOT_ALLOWED');
    expect((await send(stack.sidecar.proxyPort, { path: '/v1/devices/dev-alice-1', headers: keyHeader(key) })).status).toBe(403);
    expect((await send(stack.sidecar.proxyPort, { path: '/v1/devices/dev-bob-1', headers: keyHeader(key) })).status).toBe(403);
    expect(stack.backend.received).toEqual([]);
  });

  it('while the same key with conditions that overlap its role reads its own list, filtered', async () => {
    const key = await token({ type: 'access-token', roles: ['device-owner'], referenceId: 'alice', conditions: { referenceId: ['alice', 'bob'] } });
    const list = await send(stack.sidecar.proxyPort, { path: '/v1/devices', headers: keyHeader(key) });
    expect(list.status, list.text).toBe(200);
    expect(stack.backend.received.map((r) => r.url)).toEqual(['/v1/devices?referenceId=alice']);
  });
});
