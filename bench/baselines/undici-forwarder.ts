// Bare undici forwarder: no keys, no policy, no logging, just the forwarding Keygate does
// (keep-alive Pool, pool.dispatch streaming the answer to the client). The Node.js
// ceiling Keygate is measured against.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Dispatcher, Pool } from 'undici';
import { HOP_BY_HOP, upstreamArg } from './common.ts';

const pool = new Pool(upstreamArg(), { connections: 128, pipelining: 1, keepAliveTimeout: 4_000 });

const server = createServer((req, res) => {
  const headers: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) headers.push(raw[i]!, raw[i + 1]!);
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  let controller: Dispatcher.DispatchController | null = null;
  // A client that leaves mid-answer (a load run ending with requests in flight) must
  // release the backend connection: paused for a response that is gone, waiting for a
  // 'drain' that never comes, it would hold one of the pool's connections for good, and
  // after 128 of them the forwarder would answer nothing. Keygate aborts the same way.
  const gone = (): void => {
    if (!res.writableFinished) controller?.abort(new Error('client closed the connection'));
  };
  res.once('close', gone);
  const handler: Dispatcher.DispatchHandler = {
    // undici picks its handler API by this method's presence.
    onRequestStart(c) {
      controller = c;
      if (res.destroyed) c.abort(new Error('client closed the connection'));
    },
    onResponseStart(_c, status, h) {
      const out: Record<string, string | string[] | undefined> = {};
      for (const [k, v] of Object.entries(h)) if (!HOP_BY_HOP.has(k)) out[k] = v;
      res.writeHead(status, out);
    },
    onResponseData(c, chunk) {
      if (!res.write(chunk)) {
        c.pause();
        res.once('drain', () => c.resume());
      }
    },
    onResponseEnd() {
      res.off('close', gone);
      res.end();
    },
    onResponseError(_c, err) {
      res.off('close', gone);
      if (res.headersSent) res.destroy(err);
      else if (!res.destroyed) res.writeHead(502).end();
    },
  };
  pool.dispatch({ method: req.method as Dispatcher.HttpMethod, path: req.url ?? '/', headers, body: hasBody ? req : null }, handler);
});

server.keepAliveTimeout = 5_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ msg: 'listening', address: `127.0.0.1:${(server.address() as AddressInfo).port}` }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
