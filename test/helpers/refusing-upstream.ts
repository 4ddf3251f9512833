import { createServer, type Server } from 'node:net';

export interface RefusingUpstream {
  /** An origin where nothing listens: every connection is refused. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * An upstream that refuses connections, and keeps refusing while other tests run.
 * Closing a listener and reusing its port races with every other test that asks the
 * kernel for a port (a CI run got a backend's 200 there). Instead the port stays held on
 * 127.0.0.1, which also keeps any wildcard listener off it, and the URL points at
 * 127.0.0.2 — the same loopback interface, where nothing can be listening on that port.
 */
export async function refusingUpstream(): Promise<RefusingUpstream> {
  const holder: Server = createServer((socket) => socket.destroy());
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
  const { port } = holder.address() as { port: number };
  return {
    url: `http://127.0.0.2:${port}`,
    close: () => new Promise<void>((r) => holder.close(() => r())),
  };
}
