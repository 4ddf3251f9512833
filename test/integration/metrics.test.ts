// Every metric of the README's table, by value: known traffic through a real sidecar
// process, then each documented series is asserted to hold exactly what that traffic
// makes it (a metric that is registered but never counted fails here).
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, type ClientRequest, type IncomingMessage, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { type DemoBackend, startDemoBackend } from '../../src/demo/backend.ts';
import { generateKey } from '../../src/keys/key-format.ts';
import { send } from '../helpers/http.ts';
import { parseMetrics, type Sample, sampleValue, series, seriesOf } from '../helpers/metrics.ts';
import { POLICIES, ROOT, type Sidecar, seedKeys, startSidecar, type TestKeys, tempDir, tempStore } from '../helpers/sidecar.ts';

let backend: DemoBackend;
let sidecar: Sidecar;
let keys: TestKeys;
let policyDir: string;

beforeAll(async () => {
  backend = await startDemoBackend();
  const store = tempStore();
  keys = await seedKeys(store);
  policyDir = tempDir('kg-metrics-policy-');
  copyFileSync(join(POLICIES, 'texture.yaml'), join(policyDir, 'texture.yaml'));
  sidecar = await startSidecar({
    upstream: backend.url,
    store,
    policies: policyDir,
    args: [
      '--watch-policies',
      'false', // reloads only on SIGHUP, so the test knows how many there are
      '--key-cache-ttl',
      '5000', // the burst below must not see a key expire from the cache
      '--upstream-connections',
      '8',
      '--upstream-share',
      'server=1:1', // one backend connection for server keys: the second waits
      '--upstream-queue-timeout',
      '30000',
      '--upstream-timeout',
      '500',
      '--max-connections',
      '3',
    ],
  });
});

afterAll(async () => {
  await sidecar?.stop('SIGKILL');
  await backend?.close();
});

async function scrape(): Promise<Sample[]> {
  return parseMetrics((await send(sidecar.opsUrl, 'GET', '/metrics')).text);
}

async function until(what: string, check: (m: Sample[]) => boolean): Promise<Sample[]> {
  const t0 = Date.now();
  for (;;) {
    const m = await scrape();
    if (check(m)) return m;
    // Generous: a reload waits for the file to be stable and compiles on a worker thread, slow on a loaded machine.
    if (Date.now() - t0 > 30_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** One request on a kept-alive connection (the agent holds at most one). */
function call(agent: Agent, method: string, path: string, key?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(sidecar.url);
    const req = request({ host: hostname, port, method, path, agent, headers: key === undefined ? {} : { 'texture-api-key': key } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A server-key POST whose body is still arriving: it holds its backend connection until `finish`. */
function heldUpload(): { req: ClientRequest; answer: Promise<IncomingMessage>; finish(): void } {
  const { hostname, port } = new URL(sidecar.url);
  const req = request({
    host: hostname,
    port,
    method: 'POST',
    path: '/v1/sites',
    agent: false,
    headers: { 'texture-api-key': keys.server, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
  });
  const answer = new Promise<IncomingMessage>((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res));
    });
    req.on('error', reject);
  });
  req.write('{"name":');
  return { req, answer, finish: () => req.end('"held"}') };
}

function openSocket(): Promise<Socket> {
  const { hostname, port } = new URL(sidecar.url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(port), hostname, () => resolve(s));
    s.on('error', reject);
  });
}

const sockets = (agent: Agent): number => [...Object.values(agent.sockets), ...Object.values(agent.freeSockets)].reduce((n, list) => n + (list?.length ?? 0), 0);

const req = (decision: string, keyType: string, route: string, status: number): string => series({ decision, key_type: keyType, route, status: String(status) });

describe('every metric of the README, by value', () => {
  let dropped = 0;
  it('a known burst: requests, latency, key cache, store queries, lookups, dropped items, cache entries', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    onTestFinished(() => agent.destroy());
    const unknown = generateKey('scoped_');
    const otherItems = backend.devices.filter((d) => d.referenceId !== 'alice').length;
    const expectStatus = async (method: string, path: string, key: string | undefined, status: number): Promise<void> => {
      const r = await call(agent, method, path, key);
      expect(r.status, `${method} ${path}: ${r.body}`).toBe(status);
    };
    await expectStatus('GET', '/v1/devices', keys.server, 200); // key miss (server)
    await expectStatus('GET', '/v1/devices', keys.server, 200); // hit
    await expectStatus('GET', '/v1/devices', keys.alice, 200); // miss (alice)
    await expectStatus('GET', '/v1/devices/dev_alice_1', keys.alice, 200); // hit; lookup 1 (dev_alice_1)
    await expectStatus('GET', '/v1/devices/dev_alice_1', keys.alice, 200); // hit; the lookup is cached
    await expectStatus('GET', '/v1/devices/dev_bob_1', keys.alice, 403); // hit; lookup 2 (dev_bob_1)
    await expectStatus('GET', '/v1/devices/dev_bob_1', keys.bob, 200); // miss (bob); lookup 3: alice's lookup of it is hers alone
    await expectStatus('GET', '/v1/devices', keys.connect, 403); // miss (connect)
    await expectStatus('GET', '/v1/devices', undefined, 401); // no key: the cache is not asked
    await expectStatus('GET', '/v1/devices', 'not-a-key', 401); // malformed: not asked either
    await expectStatus('GET', '/v1/devices', unknown, 401); // miss (unknown)
    await expectStatus('GET', '/v1/devices', unknown, 401); // negative hit
    await expectStatus('GET', '/v1/devices/dev_alice_1/../dev_bob_1', keys.alice, 400); // hit
    backend.behaviour.ignoreFilter = true;
    try {
      await expectStatus('GET', '/v1/devices', keys.alice, 200); // hit; the backend's other users' items are dropped
    } finally {
      backend.behaviour.ignoreFilter = false;
    }
    dropped = otherItems;
    expect(dropped).toBeGreaterThan(0);

    const m = await until("the agent's connections", (s) => sampleValue(s, 'keygate_client_connections') === sockets(agent));
    expect(seriesOf(m, 'keygate_requests_total')).toEqual({
      [req('allow', 'server', 'GET /v1/devices', 200)]: 2,
      [req('allow', 'scoped', 'GET /v1/devices', 200)]: 2,
      [req('allow', 'scoped', 'GET /v1/devices/{id}', 200)]: 3,
      [req('forbidden', 'scoped', 'GET /v1/devices/{id}', 403)]: 1,
      [req('forbidden', 'connect', 'GET /v1/devices', 403)]: 1,
      [req('unauthenticated', 'none', '-', 401)]: 4,
      [req('invalid', 'scoped', '-', 400)]: 1,
    });
    const count = (decision: string): number | undefined => sampleValue(m, 'keygate_request_duration_seconds_count', { decision });
    expect({ allow: count('allow'), forbidden: count('forbidden'), unauthenticated: count('unauthenticated'), invalid: count('invalid'), error: count('error') }).toEqual({
      allow: 7,
      forbidden: 2,
      unauthenticated: 4,
      invalid: 1,
      error: undefined,
    });
    expect(sampleValue(m, 'keygate_request_duration_seconds_bucket', { decision: 'allow', le: '+Inf' })).toBe(7);
    expect(sampleValue(m, 'keygate_request_duration_seconds_sum', { decision: 'allow' })).toBeGreaterThan(0);
    // Five keys asked the store once each (server, alice, bob, connect, the unknown one); the rest were answered from the caches.
    expect(seriesOf(m, 'keygate_key_cache_total')).toEqual({ [series({ result: 'hit' })]: 6, [series({ result: 'negative_hit' })]: 1, [series({ result: 'miss' })]: 5 });
    expect(sampleValue(m, 'keygate_store_query_duration_seconds_count', { result: 'ok' })).toBe(5);
    expect(sampleValue(m, 'keygate_store_query_duration_seconds_count', { result: 'error' })).toBeUndefined(); // no failed query, no series
    // Two device ids were looked up for alice and one for bob (lookups are cached per user); alice's second read was a cache hit.
    expect(seriesOf(m, 'keygate_attribute_lookups_total')).toEqual({ [series({ resource: 'devices' })]: 3 });
    expect(backend.received.filter((r) => r.headers['x-keygate-purpose'] === 'attribute-lookup').map((r) => r.path)).toEqual([
      '/v1/devices/dev_alice_1',
      '/v1/devices/dev_bob_1',
      '/v1/devices/dev_bob_1',
    ]);
    expect(seriesOf(m, 'keygate_response_items_dropped_total')).toEqual({ [series({ route: 'GET /v1/devices' })]: dropped });
    expect(seriesOf(m, 'keygate_cache_entries')).toEqual({
      [series({ cache: 'key_positive' })]: 4,
      [series({ cache: 'key_negative' })]: 1,
      [series({ cache: 'attributes' })]: 3,
      [series({ cache: 'rate_limit_counters' })]: 0,
    });
    expect(seriesOf(m, 'keygate_upstream_errors_total')).toEqual({});
    expect(seriesOf(m, 'keygate_policy_reloads_total')).toEqual({});
    const version = (await send(sidecar.opsUrl, 'GET', '/readyz')).json.policy.version as string;
    expect(seriesOf(m, 'keygate_policy_info')).toEqual({ [series({ version })]: 1 });
    expect(sampleValue(m, 'keygate_requests_in_flight')).toBe(0);
    expect(sampleValue(m, 'keygate_log_lines_dropped_total')).toBe(0);
    expect(sampleValue(m, 'keygate_client_connections')).toBe(1);
    expect(sampleValue(m, 'keygate_client_connections_dropped_total')).toBe(0);
    for (const name of ['keygate_upstream_connections_in_use', 'keygate_upstream_queued']) {
      expect(seriesOf(m, name)).toEqual(Object.fromEntries(['server', 'connect', 'scoped', 'operator', 'access-token', 'lookup'].map((c) => [series({ class: c }), 0])));
    }
    expect(sampleValue(m, 'keygate_process_resident_memory_bytes')).toBeGreaterThan(10_000_000);
    expect(sampleValue(m, 'keygate_process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(sampleValue(m, 'keygate_nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
  });

  it('flow: requests in flight, backend connections in use and queued, client connections held and dropped', async () => {
    await until('no client connections', (s) => sampleValue(s, 'keygate_client_connections') === 0);
    const first = heldUpload();
    await until('the first upload holding the server connection', (s) => sampleValue(s, 'keygate_upstream_connections_in_use', { class: 'server' }) === 1);
    const second = heldUpload();
    let m = await until('the second upload queued', (s) => sampleValue(s, 'keygate_upstream_queued', { class: 'server' }) === 1);
    expect(sampleValue(m, 'keygate_requests_in_flight')).toBe(2);
    expect(sampleValue(m, 'keygate_upstream_connections_in_use', { class: 'server' })).toBe(1);
    expect(sampleValue(m, 'keygate_client_connections')).toBe(2);
    // --max-connections 3: a third connection is taken; a fourth makes room by closing the
    // oldest that has sent no request (the third: the two others carry the uploads), counted.
    const third = await openSocket();
    const thirdClosed = new Promise<void>((resolve) => third.once('close', () => resolve()));
    third.on('error', () => undefined);
    const fourth = await openSocket();
    m = await until('the third connection closed for the fourth', (s) => sampleValue(s, 'keygate_client_connections_dropped_total') === 1 && sampleValue(s, 'keygate_client_connections') === 3);
    await thirdClosed;
    expect(sampleValue(m, 'keygate_client_connections')).toBe(3);
    fourth.destroy();
    first.finish();
    second.finish();
    expect((await first.answer).statusCode).toBe(201);
    expect((await second.answer).statusCode).toBe(201);
    m = await until('everything released', (s) => sampleValue(s, 'keygate_requests_in_flight') === 0 && sampleValue(s, 'keygate_client_connections') === 0);
    expect(sampleValue(m, 'keygate_upstream_connections_in_use', { class: 'server' })).toBe(0);
    expect(sampleValue(m, 'keygate_upstream_queued', { class: 'server' })).toBe(0);
    expect(sampleValue(m, 'keygate_requests_total', { decision: 'allow', key_type: 'server', route: 'POST /v1/sites', status: '201' })).toBe(2);
    expect(sampleValue(m, 'keygate_client_connections_dropped_total')).toBe(1);
  });

  it("rate limits: the shipped policy's link limit per client refuses the 21st link in a minute, counted by key type", async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    onTestFinished(() => agent.destroy());
    const link = (): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const { hostname, port } = new URL(sidecar.url);
        const r = request({ host: hostname, port, method: 'POST', path: '/v1/connections', agent, headers: { 'texture-api-key': keys.connect, 'content-type': 'application/json' } }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        });
        r.on('error', reject);
        r.end('{"redirectUrl":"https://app.example/done"}');
      });
    // This connect key registered no redirect: each link is refused (400) once it is past the limit check.
    const statuses: number[] = [];
    for (let i = 0; i < 21; i++) statuses.push((await link()).status);
    expect(statuses).toEqual([...Array<number>(20).fill(400), 429]);
    const m = await scrape();
    expect(seriesOf(m, 'keygate_rate_limited_total')).toEqual({ [series({ key_type: 'connect' })]: 1 });
    expect(sampleValue(m, 'keygate_requests_total', { decision: 'limited', key_type: 'connect', route: 'POST /v1/connections', status: '429' })).toBe(1);
    // Without --rate-limit-store nothing falls back (rate-limits-redis.test.ts counts fallbacks by value).
    expect(sampleValue(m, 'keygate_rate_limit_store_fallbacks_total')).toBe(0);
    // One key-wide counter and one per-client counter for the connect key.
    expect(sampleValue(m, 'keygate_cache_entries', { cache: 'rate_limit_counters' })).toBe(2);
  });

  it('a backend that does not answer in time: upstream errors by code, the error decision', async () => {
    backend.behaviour.delayMs = 2000;
    try {
      expect((await send(sidecar.url, 'GET', '/v1/sites', { headers: { 'texture-api-key': keys.server } })).status).toBe(504);
    } finally {
      backend.behaviour.delayMs = 0;
    }
    const m = await scrape();
    expect(seriesOf(m, 'keygate_upstream_errors_total')).toEqual({ [series({ code: 'UPSTREAM_TIMEOUT' })]: 1 });
    expect(sampleValue(m, 'keygate_requests_total', { decision: 'error', key_type: 'server', route: 'GET /v1/sites', status: '504' })).toBe(1);
    expect(sampleValue(m, 'keygate_request_duration_seconds_count', { decision: 'error' })).toBe(1);
  });

  it('reloads: one success (a new version in force, the old one gone), one failure (the version kept)', async () => {
    const file = join(policyDir, 'texture.yaml');
    writeFileSync(file, readFileSync(file, 'utf8') + '\n# edited\n');
    sidecar.proc.kill('SIGHUP');
    let m = await until('a successful reload', (s) => sampleValue(s, 'keygate_policy_reloads_total', { result: 'success' }) === 1);
    const version = (await send(sidecar.opsUrl, 'GET', '/readyz')).json.policy.version as string;
    expect(seriesOf(m, 'keygate_policy_info')).toEqual({ [series({ version })]: 1 });
    writeFileSync(join(policyDir, 'broken.yaml'), 'roles:\n  x:\n    permissions: [ghost:read]\n');
    sidecar.proc.kill('SIGHUP');
    m = await until('a failed reload', (s) => sampleValue(s, 'keygate_policy_reloads_total', { result: 'failure' }) === 1);
    expect(seriesOf(m, 'keygate_policy_reloads_total')).toEqual({ [series({ result: 'success' })]: 1, [series({ result: 'failure' })]: 1 });
    expect(seriesOf(m, 'keygate_policy_info')).toEqual({ [series({ version })]: 1 });
  }, 70_000);

  it("covers the README's metrics table, and the table lists every metric the sidecar exports", async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const table = readme.slice(readme.indexOf('| metric | labels |'));
    const documented = [...table.slice(0, table.indexOf('\n\n')).matchAll(/^\| ([^|]+) \|/gm)].flatMap((r) => [...r[1]!.matchAll(/`(keygate_[a-z_*]+)`/g)].map((x) => x[1]!));
    // Asserted by value above, or (the worker metrics, only with --workers) in workers.test.ts, or
    // (fallbacks to local rate-limit counters, only with --rate-limit-store) in rate-limits-redis.test.ts, or
    // (held answers, connections cut) in test/blackbox/key-fairness.test.ts, or
    // (checked answers held and cut) in test/blackbox/answer-budget.test.ts, or
    // (uploads cut for fairness) in test/blackbox/party-fairness.test.ts.
    const covered = [
      'keygate_requests_total',
      'keygate_request_duration_seconds',
      'keygate_key_cache_total',
      'keygate_store_query_duration_seconds',
      'keygate_upstream_errors_total',
      'keygate_attribute_lookups_total',
      'keygate_response_items_dropped_total',
      'keygate_rate_limited_total',
      'keygate_rate_limit_store_fallbacks_total',
      'keygate_policy_reloads_total',
      'keygate_policy_info',
      'keygate_requests_in_flight',
      'keygate_cache_entries',
      'keygate_workers',
      'keygate_worker_restarts_total',
      'keygate_log_lines_dropped_total',
      'keygate_upstream_connections_in_use',
      'keygate_upstream_queued',
      'keygate_client_connections',
      'keygate_client_connections_dropped_total',
      'keygate_held_answer_bytes',
      'keygate_checked_answer_bytes',
      'keygate_checked_answers_cut_total',
      'keygate_uploads_cut_total',
      'keygate_client_connections_cut_total',
      'keygate_process_*',
      'keygate_nodejs_*',
    ];
    expect(documented.sort()).toEqual([...covered].sort());
    const exported = new Set((await scrape()).map((s) => s.name.replace(/_(bucket|sum|count)$/, '')));
    for (const name of exported) {
      if (name.startsWith('keygate_process_') || name.startsWith('keygate_nodejs_')) continue;
      expect(documented, `${name} is exported but not in the README`).toContain(name);
    }
  });
});
