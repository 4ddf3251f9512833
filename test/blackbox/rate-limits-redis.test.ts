/**
 * Shared counters (`--rate-limit-store redis://…`): two sidecar processes on one Redis
 * spend one key's single budget; with Redis unreachable, or gone mid-way, each process
 * counts locally (limits still hold, traffic still flows), says so once and counts it.
 * Needs Redis on 127.0.0.1:6379 (.ci/run starts it), plus one redis-server this file
 * starts on a free port and kills.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Backend, createKey, type KeyInfo, keyHeader, type Sidecar, send, sleep, startBackend, startSidecar, tempStore } from './harness.ts';
import { policyWithLimits } from './rate-limit-policy.ts';

const SHARED_REDIS = 'redis://127.0.0.1:6379';

let backend: Backend;
let store: string;
let policies: string;
const sidecars: Sidecar[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A redis-server of this test's own on a free port, accepting connections. */
async function privateRedis(): Promise<{ proc: ChildProcess; url: string }> {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  for (let i = 0; i < 50; i++) {
    const listening = await new Promise<boolean>((resolve) => {
      const probe = createServer();
      probe.once('error', () => resolve(true));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(false)));
    });
    if (listening) break;
    await sleep(100);
  }
  return { proc, url: `redis://127.0.0.1:${port}` };
}

async function sidecarOn(redisUrl: string): Promise<Sidecar> {
  const s = await startSidecar({ upstream: backend.url, store, policies, env: { KEYGATE_RATE_LIMIT_STORE: redisUrl } });
  sidecars.push(s);
  return s;
}

const list = (s: Sidecar, k: KeyInfo) => send(s.proxyPort, { path: '/v1/devices', headers: keyHeader(k) });

async function metric(s: Sidecar, name: string): Promise<number> {
  const text = (await send(s.opsPort, { path: '/metrics' })).text;
  return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
}

beforeAll(async () => {
  backend = await startBackend();
  store = tempStore();
  policies = policyWithLimits({ keyTypes: { scoped: { limit: 4, window: '1m' } } });
}, 30_000);
afterAll(async () => {
  await Promise.all(sidecars.map((s) => s.stop()));
  await backend?.close();
});
beforeEach(() => backend.reset());

describe('two sidecars on one Redis', () => {
  it('share one key’s budget: 4 a minute across both, then 429 on either; the backend receives the 4', async () => {
    const a = await sidecarOn(SHARED_REDIS);
    const b = await sidecarOn(SHARED_REDIS);
    const key = await createKey(store, 'scoped', 'alice');
    const statuses = [];
    for (const s of [a, b, a, b]) statuses.push((await list(s, key)).status);
    expect(statuses).toEqual([200, 200, 200, 200]);
    expect((await list(a, key)).status).toBe(429);
    const last = await list(b, key);
    expect(last.status).toBe(429);
    expect(last.headers['ratelimit-policy']).toBe('"keyTypes.scoped";q=4;w=60');
    expect(backend.received.filter((r) => r.url.startsWith('/v1/devices')).length).toBe(4);
    expect(await metric(a, 'keygate_rate_limit_store_fallbacks_total')).toBe(0);
    expect(await metric(b, 'keygate_rate_limited_total')).toBe(1);
  }, 60_000);
});

describe('Redis unreachable', () => {
  it('at start (nothing on the port): limits hold per process, the outage is logged once and each check counted', async () => {
    const s = await sidecarOn(`redis://127.0.0.1:${await freePort()}`);
    const key = await createKey(store, 'scoped', 'bob');
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await list(s, key)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
    expect(await metric(s, 'keygate_rate_limit_store_fallbacks_total')).toBe(6);
    const warnings = s.logs().filter((l) => String(l.msg).startsWith('rate-limit store unreachable'));
    expect(warnings).toHaveLength(1);
  }, 60_000);

  describe('gone mid-way', () => {
    let redis: ChildProcess | undefined;
    afterAll(() => {
      redis?.kill('SIGKILL');
    });

    it('counts in Redis while it answers, then locally once it is killed: answered, never a 5xx, still limited', async () => {
      const own = await privateRedis();
      redis = own.proc;
      const url = own.url;
      const s = await sidecarOn(url);
      const key = await createKey(store, 'scoped', 'carol');
      // The client connects while the sidecar starts; a check before that would be counted locally.
      await sleep(300);
      expect((await list(s, key)).status).toBe(200);
      expect(await metric(s, 'keygate_rate_limit_store_fallbacks_total')).toBe(0);
      redis.kill('SIGKILL');
      await new Promise((r) => redis!.once('exit', r));
      const statuses = [];
      for (let i = 0; i < 6; i++) statuses.push((await list(s, key)).status);
      // The local counters start from a whole budget: 4 more pass, then the limit holds.
      expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
      expect(await metric(s, 'keygate_rate_limit_store_fallbacks_total')).toBe(6);
      expect(s.logs().filter((l) => String(l.msg).startsWith('rate-limit store unreachable'))).toHaveLength(1);
    }, 60_000);
  });
});

describe('Redis hung (stopped, its connection open)', () => {
  let redis: ChildProcess | undefined;
  afterAll(() => {
    redis?.kill('SIGCONT');
    redis?.kill('SIGKILL');
  });

  it('costs one command timeout, not one per request; checks return to Redis once it answers again', async () => {
    const own = await privateRedis();
    redis = own.proc;
    const s = await sidecarOn(own.url);
    const key = await createKey(store, 'scoped', 'dave');
    await sleep(300);
    expect((await list(s, key)).status).toBe(200);
    expect(await metric(s, 'keygate_rate_limit_store_fallbacks_total')).toBe(0);
    redis.kill('SIGSTOP');
    const t0 = performance.now();
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await list(s, key)).status);
    const ms = performance.now() - t0;
    // Local counters, from a whole budget; the first check waited for Redis (250 ms), the rest did not.
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
    expect(ms).toBeLessThan(900);
    expect(await metric(s, 'keygate_rate_limit_store_fallbacks_total')).toBe(6);
    redis.kill('SIGCONT');
    await sleep(1200);
    // Redis counted 1 for this key before it stopped, and 1 more when it woke: the check
    // that timed out was in its socket and ran then. 2 more there, then its 429.
    const back = [];
    for (let i = 0; i < 4; i++) back.push((await list(s, key)).status);
    expect(back).toEqual([200, 200, 429, 429]);
    expect(await metric(s, 'keygate_rate_limit_store_fallbacks_total')).toBe(6);
    expect(s.logs().filter((l) => l.msg === 'rate-limit store answers again: counting there')).toHaveLength(1);
  }, 60_000);
});
