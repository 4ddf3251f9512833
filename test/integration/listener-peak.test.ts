// The memory settle tells a burst from ordinary load by the most client connections open
// at once (src/server/memory-settle.ts): ListenerConnections counts them on a real listener.
import { createServer } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { ListenerConnections } from '../../src/server/connections.ts';

const server = createServer((_req, res) => res.end('ok'));
afterEach(() => {
  server.closeAllConnections();
  server.close();
});

async function open(port: number, n: number): Promise<Socket[]> {
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Socket>((resolve, reject) => {
          const s = connect(port, '127.0.0.1', () => resolve(s));
          s.once('error', reject);
        }),
    ),
  );
}

async function until(ok: () => boolean): Promise<void> {
  for (let t = 0; !ok(); t++) {
    if (t > 400) throw new Error('not within 2 s');
    await new Promise((r) => setTimeout(r, 5));
  }
}

it('takePeak: the most connections open at once since the last call, then counted from those open now', async () => {
  const connections = new ListenerConnections(server, 10_000);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  expect(connections.takePeak()).toBe(0);
  const sockets = await open(port, 5);
  await until(() => connections.size === 5);
  for (const s of sockets.slice(0, 3)) s.destroy();
  await until(() => connections.size === 2);
  expect(connections.takePeak(), 'five were open at once, though two are now').toBe(5);
  expect(connections.takePeak(), 'from the two still open').toBe(2);
  for (const s of sockets.slice(3)) s.destroy();
  await until(() => connections.size === 0);
  expect(connections.takePeak(), 'those two were open since the last call').toBe(2);
  expect(connections.takePeak()).toBe(0);
});
