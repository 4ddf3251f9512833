// Bare http-proxy-3 (the http-proxy API most Node gateways are built on): no keys, no
// policy, a keep-alive agent so it is not penalised for reconnecting to the backend.
import { Agent, createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createProxyServer } from 'http-proxy-3';
import { upstreamArg } from './common.ts';

const agent = new Agent({ keepAlive: true, maxSockets: 128 });
const proxy = createProxyServer({ target: upstreamArg(), agent });
proxy.on('error', (_err, _req, res) => {
  // res is a Socket for upgrade requests, which the bench does not send.
  const r = res as ServerResponse;
  if (typeof r.writeHead === 'function' && !r.headersSent) r.writeHead(502).end();
  else r.destroy();
});

const server = createServer((req, res) => proxy.web(req, res));
server.keepAliveTimeout = 5_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ msg: 'listening', address: `127.0.0.1:${(server.address() as AddressInfo).port}` }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
