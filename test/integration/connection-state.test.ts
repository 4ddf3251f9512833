// What Keygate holds per client connection is let go when the connection closes: after
// hundreds of connections (answered and kept alive, refused, or gone while their request
// waited for the backend) are closed, the listener's connection registry is empty, no
// backend connection, queue place, body byte or in-flight request is held, and a new
// client is answered. In process, over real HTTP, so the registry and admission are read
// directly as well as through /metrics.
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, type Socket } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { send } from '../helpers/http.ts';
import { type InProcessKeygate, startInProcess } from '../helpers/in-process.ts';
import { parseMetrics, sampleValue } from '../helpers/metrics.ts';

let kg: InProcessKeygate | undefined;
let upstream: Server | undefined;
afterEach(async () => {
  await kg?.close();
  kg = undefined;
  upstream?.closeAllConnections();
  upstream?.close();
  upstream = undefined;
});

/** Answers every request after `delayMs`: long enough for clients to leave while theirs wait. */
async function slowBackend(delayMs: number): Promise<string> {
  upstream = createServer((_req, res) => {
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":[]}'), delayMs);
  });
  await new Promise<void>((r) => upstream!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
}

async function clientConnections(opsUrl: string): Promise<number> {
  const text = await (await fetch(`${opsUrl}/metrics`)).text();
  return sampleValue(parseMetrics(text), 'keygate_client_connections') ?? NaN;
}

async function until(what: string, ok: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!(await ok())) {
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function get(base: string, agent: Agent, key: string): Promise<number> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path: '/v1/devices', headers: { 'texture-api-key': key }, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Sends a request and leaves `afterMs` later, before the backend answers. */
function abandon(base: string, key: string, afterMs: number): Promise<void> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve) => {
    const s: Socket = connect(Number(port), hostname, () => {
      s.write(`GET /v1/devices HTTP/1.1\r\nhost: x\r\ntexture-api-key: ${key}\r\n\r\n`);
      setTimeout(() => s.destroy(), afterMs);
    });
    s.on('error', () => {});
    s.on('close', () => resolve());
  });
}

it('after hundreds of connections close, nothing of theirs is held and a new client is answered', async () => {
  kg = await startInProcess({ upstream: await slowBackend(300), args: ['--upstream-queue', '2000', '--upstream-queue-timeout', '20000'] });
  const base = kg.url;
  const keptAlive = new Agent({ keepAlive: true, maxSockets: Infinity });
  const refused = new Agent({ keepAlive: true, maxSockets: Infinity });
  try {
    // 300 answered and kept alive, 100 refused (unknown key) and kept alive, 200 gone
    // while their requests wait: the pool has 128 backend connections, so most of those
    // are in the admission queue and the rest at the backend when their clients leave.
    const answered = Array.from({ length: 300 }, () => get(base, keptAlive, kg!.keys.server));
    const unknown = Array.from({ length: 100 }, () => get(base, refused, `${kg!.keys.server.slice(0, -4)}AAAA`));
    const gone = Array.from({ length: 200 }, () => abandon(base, kg!.keys.server, 100));
    const statuses = await Promise.all(answered);
    expect(new Set(statuses)).toEqual(new Set([200]));
    expect(new Set(await Promise.all(unknown))).toEqual(new Set([401]));
    await Promise.all(gone);
    // The answered ones are still open: the registry holds them.
    expect(await clientConnections(kg.opsUrl)).toBeGreaterThanOrEqual(300);
  } finally {
    keptAlive.destroy();
    refused.destroy();
  }
  await until('the connection registry is empty', async () => (await clientConnections(kg!.opsUrl)) === 0);
  expect(kg.running.metrics.inFlight).toBe(0);
  await kg.settled();
  const metrics = parseMetrics(await (await fetch(`${kg.opsUrl}/metrics`)).text());
  for (const s of metrics.filter((m) => m.name === 'keygate_upstream_queued' || m.name === 'keygate_upstream_connections_in_use')) {
    expect(s.value, `${s.name} ${JSON.stringify(s.labels)}`).toBe(0);
  }
  expect((await send(base, 'GET', '/v1/devices', { headers: { 'texture-api-key': kg.keys.server } })).status).toBe(200);
}, 60_000);
