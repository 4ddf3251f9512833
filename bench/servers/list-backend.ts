// The growth bench's backend: the demo backend's device list (the same records and page
// envelope, src/demo/data.ts), each distinct page serialised once. At 1,000 items a fresh
// JSON.stringify per request would make the backend, on the same two cores, the limit of
// every target; with the bytes kept, what grows with the answer is the proxies' work.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { demoDevices, page } from '../../src/demo/data.ts';
import { BENCH_USERS } from '../fixtures.ts';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  const n = i === -1 ? fallback : Number(process.argv[i + 1]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a whole number ≥ 1`);
  return n;
};

const devices = demoDevices(BENCH_USERS, arg('devices-per-user', 2));
const pages = new Map<string, Buffer>();
const notFound = Buffer.from(JSON.stringify({ error: { status: 404, message: 'route not found' } }));

function listPage(query: URLSearchParams): Buffer {
  const wanted = query.get('referenceId');
  const pageNo = Number(query.get('page') ?? 1);
  const perPage = Number(query.get('perPage') ?? 50);
  const key = `${wanted}|${pageNo}|${perPage}`;
  let bytes = pages.get(key);
  if (bytes === undefined) {
    const ids = wanted?.split(',');
    const list = ids === undefined ? devices : devices.filter((d) => ids.includes(d.referenceId));
    bytes = Buffer.from(JSON.stringify(page(list, pageNo, perPage)));
    pages.set(key, bytes);
  }
  return bytes;
}

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const ok = req.method === 'GET' && path === '/v1/devices';
  const body = ok ? listPage(new URLSearchParams(q === -1 ? '' : url.slice(q + 1))) : notFound;
  // Requests carry no body here, but read it anyway so a keep-alive socket stays usable.
  req.resume();
  res.writeHead(ok ? 200 : 404, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 10_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ msg: 'listening', address: `127.0.0.1:${(server.address() as AddressInfo).port}` }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
