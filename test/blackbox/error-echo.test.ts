/**
 * Invariant 6 in error bodies: a refusal that names what the client sent (an unknown
 * field or query parameter) shows a key-shaped name as `{key}`. Error bodies are logged by
 * clients, gateways and support tickets; `{"<secret>": 1}` sent by mistake must not come
 * back with the secret in `error.message` and `error.field`.
 */
import { describe, expect, it } from 'vitest';
import { keyHeader, send, useStack } from './harness.ts';

const stack = useStack();

const json = (body: unknown) => ({ 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(JSON.stringify(body))) });

describe('a key-shaped name in what a refusal quotes', () => {
  it.each([
    ['as it is', (k: string) => k],
    ['percent-encoded', (k: string) => k.replace('_', '%5F')],
    ['in another case of its prefix', (k: string) => k.replace(/^[a-z]+/, (p) => p.toUpperCase())],
    ['with another separator', (k: string) => k.replace('_', '-')],
    ['with four separators', (k: string) => k.replace('_', '____')],
    ['as its bare 38 characters (the prefix is public)', (k: string) => k.slice(k.indexOf('_') + 1)],
  ])('is {key} in error.message and error.field: an unknown body field, an unknown query parameter, a link field (%s)', async (_how, spell) => {
    const secret = stack.keys.server.key;
    const name = spell(secret);
    const body = { type: 'server', [name]: 1 };
    const created = await send(stack.sidecar.proxyPort, { method: 'POST', path: '/v1/api-keys', headers: { ...keyHeader(stack.keys.server), ...json(body) }, body: JSON.stringify(body) });
    const listed = await send(stack.sidecar.proxyPort, { path: `/v1/api-keys?${encodeURIComponent(secret)}=1`, headers: keyHeader(stack.keys.server) });
    const link = { redirectUrl: 'https://app.example.com/connected', [name]: 'x' };
    const linked = await send(stack.sidecar.proxyPort, { method: 'POST', path: '/v1/connections', headers: { ...keyHeader(stack.keys.server), ...json(link) }, body: JSON.stringify(link) });
    for (const r of [created, listed, linked]) {
      expect(r.status).toBe(400);
      expect(r.text).not.toContain(secret.slice(7));
      expect(r.text).toContain('{key}');
    }
    expect((created.json as { error: { field: string } }).error.field).toBe('{key}');
  });
});
