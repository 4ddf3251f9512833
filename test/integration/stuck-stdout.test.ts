// A log reader that stops reading (a stuck log shipper) must not keep a stopping sidecar
// alive: the last flush is bounded (LAST_FLUSH_MS), then the process exits 0.
import { Agent, request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { type DemoBackend, startDemoBackend } from '../../src/demo/backend.ts';
import { LAST_FLUSH_MS } from '../../src/server/process.ts';
import { type Sidecar, startSidecar, tempStore } from '../helpers/sidecar.ts';

let backend: DemoBackend | undefined;
let sidecar: Sidecar | undefined;
afterEach(async () => {
  await sidecar?.stop('SIGKILL');
  await backend?.close();
});

/** `n` requests without a key (401: the cheapest path, one access line each) over a few kept-alive connections. */
async function refusals(url: string, n: number): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  const { hostname, port } = new URL(url);
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = request({ host: hostname, port, path: '/v1/devices', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', reject);
      req.end();
    });
  for (let sent = 0; sent < n; sent += 64) await Promise.all(Array.from({ length: 64 }, one));
  agent.destroy();
}

describe('SIGTERM while stdout is not read', () => {
  it(`exits 0 within the last-flush bound (${LAST_FLUSH_MS} ms) instead of waiting on the full pipe`, async () => {
    backend = await startDemoBackend();
    sidecar = await startSidecar({ upstream: backend.url, store: tempStore() });
    // From here on nobody reads the sidecar's stdout: the pipe fills and stays full.
    sidecar.proc.stdout!.pause();
    const requests = 5_000; // about 1.3 MB of access lines, several times what a pipe holds
    await refusals(sidecar.url, requests);
    const exited = new Promise<number | null>((resolve) => sidecar!.proc.once('exit', (code) => resolve(code)));
    const t0 = performance.now();
    sidecar.proc.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), LAST_FLUSH_MS + 9_000))]);
    const ms = performance.now() - t0;
    console.log(`[observation] SIGTERM with a stuck stdout reader → exit ${code} after ${ms.toFixed(0)} ms`);
    expect(code).toBe(0);
    // Drain (nothing in flight) plus the bounded flush, with room for a loaded machine.
    expect(ms).toBeLessThan(LAST_FLUSH_MS + 3_000);
    // The pipe really was stuck: what it held is readable now, and it is not every line.
    sidecar.proc.stdout!.resume();
    await new Promise((resolve) => sidecar!.proc.stdout!.once('end', resolve));
    const accessLines = sidecar.logs.filter((l) => l.msg === 'access').length;
    expect(accessLines).toBeLessThan(requests);
  });
});
