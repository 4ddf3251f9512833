// Invariant 12 against the key cache: a sidecar may hold a key as it was for up to the
// change feed's interval (SQLite: 200 ms) after another process changed it. An owner who
// rotates a leaked key with the CLI (the old secret in a grace period) must not lose the
// key to the leaked secret, which — still cached as the current one — rotated the key
// again and kept the only secret that works; nor may a key just given an expiry make a key
// that outlives it. The management API judges the acting secret as the store has it now.
// The attacker acts the moment the store shows the change (read through the API itself,
// which asks the store), before the sidecar's cache has heard of it.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { apiOf, cli, cliKey } from './api-keys-suite.ts';
import { type Backend, type Sidecar, startBackend, startSidecar, tempStore } from './harness.ts';

let backend: Backend;
let sidecar: Sidecar;
let store: string;
const api = apiOf(() => sidecar);

beforeAll(async () => {
  backend = await startBackend();
  store = tempStore();
  await cliKey(store, ['--type', 'server', '--name', 'seed']);
  sidecar = await startSidecar({ upstream: backend.url, store });
}, 60_000);
afterAll(async () => {
  await sidecar?.stop();
  await backend?.close();
});

/** Runs the CLI and, meanwhile, calls `seen` every few ms until it says the store shows the change; then `act`, at once. */
async function rightAfter(args: string[], seen: () => Promise<boolean>): Promise<{ stdout: string }> {
  let done = false;
  const run = cli(args).finally(() => {
    done = true;
  });
  for (;;) {
    if (await seen()) break;
    if (done) break;
    await new Promise((r) => setTimeout(r, 2));
  }
  return run;
}

describe('the acting secret is judged as the store has it, not as the cache remembers it', () => {
  test('a secret the owner rotated away (grace 1 h, with the CLI) cannot rotate the key again before the sidecar hears of the rotation', async () => {
    const outcomes: number[] = [];
    for (let i = 0; i < 4; i++) {
      const leaked = await cliKey(store, ['--type', 'server', '--name', `leaked-${i}`]);
      const before = (await api('GET', `/v1/api-keys/${leaked.id}`, leaked.key)).json as { keyPrefix: string };
      let attack: Promise<{ status: number; json: unknown }> | undefined;
      const owner = await rightAfter(['keys', 'rotate', leaked.id, '--grace', '1h', '--json', '--store', store], async () => {
        const now = await api('GET', `/v1/api-keys/${leaked.id}`, leaked.key);
        if ((now.json as { keyPrefix?: string }).keyPrefix === before.keyPrefix) return false;
        attack = api('POST', `/v1/api-keys/${leaked.id}/rotate`, leaked.key, { gracePeriodSeconds: 0 });
        return true;
      });
      const ownerKey = (JSON.parse(owner.stdout) as { key: string }).key;
      const r = await (attack ?? api('POST', `/v1/api-keys/${leaked.id}/rotate`, leaked.key, { gracePeriodSeconds: 0 }));
      outcomes.push(r.status);
      // The owner's new secret still works; the leaked one took nothing.
      expect((await api('GET', `/v1/api-keys/${leaked.id}`, ownerKey)).status).toBe(200);
    }
    expect(outcomes.filter((s) => s === 200)).toEqual([]);
    expect(outcomes.every((s) => s === 409 || s === 403)).toBe(true);
  });

  test('a key the CLI just gave an expiry cannot make a key that never expires before the sidecar hears of it', async () => {
    const outcomes: number[] = [];
    for (let i = 0; i < 4; i++) {
      const maker = await cliKey(store, ['--type', 'server', '--name', `maker-${i}`]);
      await api('GET', `/v1/api-keys/${maker.id}`, maker.key);
      let made: Promise<{ status: number; json: unknown }> | undefined;
      await rightAfter(['keys', 'update', maker.id, '--expires-in', '1h', '--store', store], async () => {
        const now = await api('GET', `/v1/api-keys/${maker.id}`, maker.key);
        if ((now.json as { expiresAt?: string | null }).expiresAt === null) return false;
        made = api('POST', '/v1/api-keys', maker.key, { type: 'server', name: `child-${i}` });
        return true;
      });
      const r = await (made ?? api('POST', '/v1/api-keys', maker.key, { type: 'server', name: `child-${i}` }));
      outcomes.push(r.status);
    }
    expect(outcomes.filter((s) => s === 201)).toEqual([]);
    expect(outcomes.every((s) => s === 409 || s === 403)).toBe(true);
  });
});
