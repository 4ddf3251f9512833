// After a burst of thousands of connections, Keygate gives back the memory the burst grew
// once traffic stops: run as deployed (bin/keygate.js as an executable, so its shebang's
// Node flags apply), flooded by 5,000 connections, then left idle. Linux only (/proc).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { delimiter, dirname } from 'node:path';
import autocannon from 'autocannon';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { BIN, createKey, ROOT, tempStore } from './harness.ts';

const MB = 2 ** 20;
/** The target: what a burst leaves behind once Keygate has idled. */
const MAX_KEPT_MB = 50;

let upstream: Server;
let upstreamUrl: string;
beforeAll(async () => {
  upstream = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":[]}'));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});
afterAll(() => {
  upstream.closeAllConnections();
  upstream.close();
});

const rssMb = (pid: number): number => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

async function heapTotalMb(opsUrl: string): Promise<number> {
  const text = await (await fetch(`${opsUrl}/metrics`)).text();
  return Number(/^keygate_nodejs_heap_size_total_bytes (\S+)$/m.exec(text)![1]) / MB;
}

test.runIf(process.platform === 'linux')(
  'the heap a 5,000-connection burst grew is given back once traffic stops',
  async () => {
    const store = tempStore();
    const server = await createKey(store, 'server');
    const proc = spawn(
      BIN,
      [
        'serve',
        '--upstream',
        upstreamUrl,
        '--listen',
        '127.0.0.1:0',
        '--ops-listen',
        '127.0.0.1:0',
        '--store',
        store,
        '--upstream-queue',
        '6000',
        '--upstream-queue-timeout',
        '30000',
        '--access-log',
        'false',
      ],
      {
        cwd: ROOT,
        // `env -S node` in the shebang finds this Node first.
        env: { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`, KEYGATE_LOG_BUFFER: '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    const lines = (): Array<Record<string, unknown>> =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    try {
      const t0 = Date.now();
      while (!lines().some((l) => l.msg === 'keygate listening')) {
        if (proc.exitCode !== null || Date.now() - t0 > 20_000) throw new Error(`keygate did not start:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const ready = lines().find((l) => l.msg === 'keygate listening')!;
      const url = `http://${ready.proxy as string}`;
      const opsUrl = `http://${ready.ops as string}`;
      const run = (connections: number, duration: number) => autocannon({ url: `${url}/v1/devices`, connections, duration, headers: { 'texture-api-key': server.key } });

      await run(10, 1);
      await new Promise((r) => setTimeout(r, 1000));
      const idle = rssMb(proc.pid!);
      const burst = await run(5000, 5);
      expect(burst.non2xx, `the burst is answered, not refused: ${JSON.stringify(burst.statusCodeStats)}`).toBe(0);
      expect(burst.statusCodeStats['200']?.count ?? 0).toBeGreaterThan(1000);
      const grown = await heapTotalMb(opsUrl);

      const t1 = Date.now();
      while (!lines().some((l) => l.msg === 'memory returned after a burst')) {
        if (Date.now() - t1 > 15_000) throw new Error(`no settle within 15 s (heap ${grown.toFixed(0)} MB after the burst):\n${out.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const settled = lines().find((l) => l.msg === 'memory returned after a burst')!;
      expect(settled.heapAfterMb as number).toBeLessThan(settled.heapBeforeMb as number);
      // The settle may come before the scrape after the burst (5,000 sockets take a while
      // to close): then `grown` is already the settled heap, and the settle's own figure is the peak.
      expect(await heapTotalMb(opsUrl)).toBeLessThan(Math.max(grown, settled.heapBeforeMb as number));
      expect(rssMb(proc.pid!) - idle, `RSS idle ${idle.toFixed(0)} MB before the burst, ${rssMb(proc.pid!).toFixed(0)} MB after it settled`).toBeLessThan(MAX_KEPT_MB);
      // And it still answers.
      expect((await run(1, 1)).statusCodeStats['200']?.count ?? 0).toBeGreaterThan(0);
    } finally {
      proc.kill('SIGTERM');
    }
  },
  90_000,
);
