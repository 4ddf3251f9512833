import { accessSync, constants, mkdtempSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { BENCH_ROOT } from './options.ts';
import { processTree } from './procfs.ts';
import { type ServerProcess, spawnServer } from './spawn.ts';

export const ROOT = resolve(BENCH_ROOT, '..');
const KEYGATE_BIN = join(ROOT, 'bin/keygate.js');
const POLICIES = join(ROOT, 'policies');

/** A server under test: where to send load and which processes to charge for it. */
export interface Target {
  readonly url: string;
  /** Every process of the target (workers included), for CPU and RSS. */
  readonly pids: readonly number[];
  stop(): Promise<void>;
}

export interface KeygateTarget extends Target {
  readonly opsUrl: string;
  /** From spawn to every worker's "keygate listening" line. */
  readonly startupMs: number;
}

const listeningLine = (line: Record<string, unknown>): boolean => line.msg === 'listening' && typeof line.address === 'string';

/** Each bench server is its own Node process (same binary as the bench: Node 24, type stripping). */
async function startNodeServer(script: string, args: readonly string[]): Promise<Target> {
  const server = await spawnServer(process.execPath, [join(BENCH_ROOT, script), ...args], { cwd: ROOT, isReady: listeningLine });
  return fromProcess(server, `http://${server.readyLines[0]!.address as string}`);
}

function fromProcess(server: ServerProcess, url: string): Target {
  return { url, pids: processTree(server.pid), stop: () => server.stop() };
}

export function startBackend(): Promise<Target> {
  return startNodeServer('servers/backend.ts', []);
}

/** The growth bench's backend: device lists serialised once (bench/servers/list-backend.ts). */
export function startListBackend(devicesPerUser: number): Promise<Target> {
  return startNodeServer('servers/list-backend.ts', ['--devices-per-user', String(devicesPerUser)]);
}

export function startUndiciForwarder(upstream: string): Promise<Target> {
  return startNodeServer('baselines/undici-forwarder.ts', ['--upstream', upstream]);
}

export function startHttpProxy3(upstream: string): Promise<Target> {
  return startNodeServer('baselines/http-proxy3.ts', ['--upstream', upstream]);
}

/**
 * `keygate serve` exactly as deployed (bin/keygate.js), on ephemeral ports. With
 * --workers N every worker prints its own "keygate listening" line; load starts only
 * when all N are accepting, or the first seconds would measure fewer workers.
 */
export async function startKeygate(opts: {
  upstream: string;
  storePath: string;
  workers: number;
  profileDir?: string;
  policies?: string;
  upstreamQueue?: number;
  nodeFlags?: readonly string[];
}): Promise<KeygateTarget> {
  // bin/keygate.js is run as an executable, so its shebang's Node flags apply as they do
  // for `npx keygate serve`; this Node's directory goes first on PATH for `env` to find.
  // V8 writes a profile when the process exits; Keygate exits cleanly on SIGTERM.
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}` };
  if (opts.profileDir !== undefined) env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --cpu-prof --cpu-prof-dir=${opts.profileDir}`.trim();
  // With nodeFlags (measuring a V8 flag), Node is started with them instead of the shebang's.
  const [command, nodeArgs] = opts.nodeFlags === undefined ? [KEYGATE_BIN, []] : [process.execPath, [...opts.nodeFlags, KEYGATE_BIN]];
  const server = await spawnServer(
    command,
    [
      ...nodeArgs,
      'serve',
      '--upstream',
      opts.upstream,
      '--listen',
      '127.0.0.1:0',
      '--ops-listen',
      '127.0.0.1:0',
      '--store',
      `sqlite:${opts.storePath}`,
      '--policies',
      opts.policies ?? POLICIES,
      '--workers',
      String(opts.workers),
      // Scenario 7 sends 1,000 concurrent first requests of one scoped key, more than the
      // scoped share of the backend pool (96), so most wait in that type's queue; on a
      // loaded machine some waited past the default 1 s and got 503. The scenario measures
      // store queries, not queueing; no other scenario queues (64 connections).
      '--upstream-queue-timeout',
      '30000',
      // A connection count above the default queue (1,024 a key type) would measure the
      // queue's refusals (503 at once) instead of forwarding: the connections axis passes
      // its largest count.
      ...(opts.upstreamQueue === undefined ? [] : ['--upstream-queue', String(opts.upstreamQueue)]),
    ],
    {
      cwd: ROOT,
      // Keygate's production default (buffered access log; the "listening" line is flushed
      // at once). The access lines are read and discarded by spawnServer.
      env,
      // With --workers N the primary prints it once every worker listens.
      isReady: (line) => line.msg === 'keygate listening',
    },
  );
  const first = server.readyLines[0]!;
  return { ...fromProcess(server, `http://${first.proxy as string}`), opsUrl: `http://${first.ops as string}`, startupMs: server.readyMs };
}

/** nginx on PATH (or the usual sbin directories), or undefined. */
export function findNginx(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, 'nginx'), constants.X_OK);
      return join(dir, 'nginx');
    } catch {
      /* not here */
    }
  }
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolvePort(port));
    });
  });
}

/**
 * nginx as a plain pass-through proxy: one worker (Keygate's default is one process),
 * keep-alive to the backend, no access log (the C ceiling, not a logging benchmark).
 */
export async function startNginx(binary: string, upstream: string): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-nginx-'));
  const port = await freePort();
  const backend = new URL(upstream);
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream backend {
    server ${backend.host};
    keepalive 128;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    keepalive_requests 1000000;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering on;
    }
  }
}
`,
  );
  const server = await spawnServer(binary, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { readyPort: port });
  // nginx forks its worker after binding; give it a moment so the worker is in the tree.
  await new Promise((r) => setTimeout(r, 200));
  return fromProcess(server, `http://127.0.0.1:${port}`);
}
