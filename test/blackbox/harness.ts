/**
 * Black-box harness: drives Keygate only through its external contract (CLI + HTTP),
 * against a tiny Texture-shaped backend that records everything it receives.
 * Nothing here imports from src/.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, request, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach } from 'vitest';

const execFileP = promisify(execFile);

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin/keygate.js');
export const POLICIES = join(ROOT, 'policies');

// ---------------------------------------------------------------- keys (CLI)

export interface KeyInfo {
  id: string;
  key: string;
  type: string;
  referenceId: string | null;
  expiresAt?: string | null;
}

export function tempStore(): string {
  return 'sqlite:' + join(mkdtempSync(join(tmpdir(), 'keygate-bb-')), 'keys.db');
}

export async function createKey(store: string, type: 'server' | 'connect' | 'scoped', referenceId?: string): Promise<KeyInfo> {
  const args = [BIN, 'keys', 'create', '--type', type, '--store', store, '--json'];
  if (referenceId !== undefined) args.push('--reference-id', referenceId);
  const { stdout } = await execFileP(process.execPath, args, { cwd: ROOT });
  const line = stdout
    .trim()
    .split('\n')
    .find((l) => l.trim().startsWith('{'));
  if (!line) throw new Error(`keys create printed no JSON: ${stdout}`);
  const obj = JSON.parse(line) as KeyInfo;
  if (!obj.id || !obj.key) throw new Error(`keys create JSON lacks id/key: ${line}`);
  return obj;
}

export async function revokeKey(store: string, id: string): Promise<void> {
  await execFileP(process.execPath, [BIN, 'keys', 'revoke', id, '--store', store], { cwd: ROOT });
}

export interface KeySet {
  store: string;
  server: KeyInfo;
  connect: KeyInfo;
  alice: KeyInfo; // scoped, referenceId alice
  bob: KeyInfo; // scoped, referenceId bob
}

export async function createKeySet(store = tempStore()): Promise<KeySet> {
  // sequential on purpose: concurrent `keys create` on a brand-new SQLite store can fail
  // with "database is locked" (reported separately; see hardening.test.ts)
  const server = await createKey(store, 'server');
  const connectK = await createKey(store, 'connect');
  const alice = await createKey(store, 'scoped', 'alice');
  const bob = await createKey(store, 'scoped', 'bob');
  return { store, server, connect: connectK, alice, bob };
}

// ---------------------------------------------------------------- backend

export interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

export interface Device {
  id: string;
  referenceId: string;
  name: string;
  secret: string; // marker that must never leak to the wrong user
}

export const DEVICES: Device[] = [
  { id: 'dev-alice-1', referenceId: 'alice', name: 'Alice thermostat', secret: 'ALICE_SECRET_1' },
  { id: 'dev-alice-2', referenceId: 'alice', name: 'Alice battery', secret: 'ALICE_SECRET_2' },
  { id: 'dev-bob-1', referenceId: 'bob', name: 'Bob thermostat', secret: 'BOB_SECRET_1' },
  { id: 'dev-bob-2', referenceId: 'bob', name: 'Bob charger', secret: 'BOB_SECRET_2' },
];

const COMMANDS = [
  { id: 'cmd-alice-1', deviceId: 'dev-alice-1', status: 'succeeded', note: 'ALICE_CMD' },
  { id: 'cmd-bob-1', deviceId: 'dev-bob-1', status: 'succeeded', note: 'BOB_CMD' },
];

export interface Backend {
  url: string;
  port: number;
  received: Received[];
  /** ignore the referenceId filter and return everyone's devices */
  ignoreFilter: boolean;
  /** never answer (requests hang until close) */
  hang: boolean;
  /** answer after this many ms */
  delayMs: number;
  /** paths (prefix) that hang even when hang=false */
  hangPaths: string[];
  /** send status + headers + a partial body, then stall forever */
  stallBody: boolean;
  /** custom answer for a request; return undefined to fall through to the normal routes */
  responder?: ((rec: Received) => { status: number; headers?: Record<string, string | string[]>; body?: string | Buffer } | undefined) | undefined;
  reset(): void;
  /** requests other than the owner lookups Keygate may issue (GET /v1/devices/{id}) */
  close(): Promise<void>;
}

function list<T>(data: T[]) {
  return { data, page: 1, perPage: 50, totalItems: data.length, totalPages: 1 };
}

export async function startBackend(): Promise<Backend> {
  const pending = new Set<import('node:http').ServerResponse>();
  const state: Backend = {
    url: '',
    port: 0,
    received: [],
    ignoreFilter: false,
    hang: false,
    delayMs: 0,
    hangPaths: [],
    stallBody: false,
    responder: undefined,
    reset() {
      state.received.length = 0;
      state.ignoreFilter = false;
      state.hang = false;
      state.delayMs = 0;
      state.hangPaths = [];
      state.stallBody = false;
      state.responder = undefined;
    },
    close: async () => {},
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rec: Received = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks),
      };
      state.received.push(rec);
      if (state.hang || state.hangPaths.some((p) => rec.url.startsWith(p))) {
        pending.add(res);
        res.on('close', () => pending.delete(res));
        return;
      }
      if (state.stallBody) {
        pending.add(res);
        res.on('close', () => pending.delete(res));
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100000' });
        res.write('{"data":[{"id":"dev-alice-1","referenceId":"alice"},');
        return;
      }
      const respond = () => route(rec, res);
      if (state.delayMs > 0) setTimeout(respond, state.delayMs);
      else respond();
    });
  });

  function send(res: import('node:http').ServerResponse, status: number, body: unknown) {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  function route(rec: Received, res: import('node:http').ServerResponse) {
    const custom = state.responder?.(rec);
    if (custom) {
      const body = custom.body ?? '';
      res.writeHead(custom.status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...custom.headers });
      res.end(body);
      return;
    }
    const u = new URL(rec.url, 'http://backend');
    const p = u.pathname;
    const seg = p.split('/').filter(Boolean); // ['v1', 'devices', ...]
    if (seg[0] !== 'v1') return send(res, 404, { error: 'not found' });
    if (seg[1] === 'devices') {
      if (seg.length === 2 && rec.method === 'GET') {
        const refs = u.searchParams.getAll('referenceId');
        const data = state.ignoreFilter || refs.length === 0 ? DEVICES : DEVICES.filter((d) => refs.includes(d.referenceId));
        return send(res, 200, list(data));
      }
      const dev = DEVICES.find((d) => d.id === seg[2]);
      if (!dev) return send(res, 404, { error: 'device not found' });
      if (seg.length === 3) {
        if (rec.method === 'DELETE') return send(res, 204, undefined);
        if (rec.method === 'GET' || rec.method === 'HEAD') return send(res, 200, dev);
        return send(res, 200, dev);
      }
      if (seg.length === 4) {
        const sub = seg[3];
        if (sub === 'commands') return send(res, 200, list(COMMANDS.filter((c) => c.deviceId === dev.id)));
        return send(res, 200, list([{ id: `${sub}-${dev.id}`, deviceId: dev.id, kind: sub, secret: dev.secret }]));
      }
      return send(res, 404, { error: 'not found' });
    }
    if (seg[1] === 'commands') {
      if (rec.method === 'POST' && seg.length === 4) {
        let deviceId: unknown;
        try {
          deviceId = (JSON.parse(rec.body.toString('utf8')) as { deviceId?: unknown }).deviceId;
        } catch {
          deviceId = null;
        }
        return send(res, 201, { id: 'cmd-new', deviceId, status: 'pending', type: seg[2], action: seg[3] });
      }
      if (seg.length === 3) {
        const cmd = COMMANDS.find((c) => c.id === seg[2]);
        if (!cmd) return send(res, 404, { error: 'command not found' });
        return send(res, 200, cmd);
      }
      return send(res, 200, list(COMMANDS));
    }
    if (seg[1] === 'connections' && rec.method === 'POST') {
      return send(res, 201, { id: 'conn-1', url: 'https://connect.example/abc' });
    }
    if (seg[1] === 'sites') return send(res, 200, list([{ id: 'site-1', name: 'HQ' }]));
    if (seg[1] === 'api-keys') return send(res, 200, list([{ id: 'ak-1' }]));
    return send(res, 200, { ok: true, method: rec.method, path: p });
  }

  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  state.port = addr.port;
  state.url = `http://127.0.0.1:${addr.port}`;
  state.close = async () => {
    for (const r of pending) r.destroy();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return state;
}

/** Requests the backend received that are NOT a plain GET (writes). */
export function writes(b: Backend): Received[] {
  return b.received.filter((r) => r.method !== 'GET' && r.method !== 'HEAD');
}

// ---------------------------------------------------------------- sidecar

export interface Sidecar {
  proxyPort: number;
  opsPort: number;
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  logs(): Array<Record<string, unknown>>;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startSidecar(opts: {
  upstream: string;
  store: string;
  policies?: string;
  env?: Record<string, string>;
  /** Run under this open-file limit (soft and hard), as `ulimit -n N` would. */
  openFiles?: number;
}): Promise<Sidecar> {
  const argv = [BIN, 'serve', '--upstream', opts.upstream, '--listen', '127.0.0.1:0', '--ops-listen', '127.0.0.1:0', '--store', opts.store, '--policies', opts.policies ?? POLICIES];
  const [command, args] = opts.openFiles === undefined ? [process.execPath, argv] : ['sh', ['-c', `ulimit -n ${opts.openFiles} && exec "$0" "$@"`, process.execPath, ...argv]];
  const proc = spawn(command, args, { cwd: ROOT, env: { ...process.env, KEYGATE_LOG_BUFFER: '0', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const ready = new Promise<{ proxy: string; ops: string }>((res, rej) => {
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = out.split('\n').find((l) => l.includes('"keygate listening"'));
      if (m) {
        const e = JSON.parse(m) as { proxy: string; ops: string };
        res(e);
      }
    });
    proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    void exited.then((code) => rej(new Error(`keygate exited ${code} before listening\n${err}\n${out}`)));
  });
  const addr = await ready;
  const port = (hp: string) => Number(hp.slice(hp.lastIndexOf(':') + 1));
  return {
    proxyPort: port(addr.proxy),
    opsPort: port(addr.ops),
    proc,
    stdout: () => out,
    stderr: () => err,
    logs: () =>
      out
        .split('\n')
        .filter((l) => l.trim().startsWith('{'))
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            return {};
          }
        }),
    exited,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

// ---------------------------------------------------------------- clients

export interface Res {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: unknown;
  ms: number;
}

/** node:http request; the path is sent byte-for-byte. */
export function send(port: number, opts: { method?: string; path: string; headers?: Record<string, string | string[]>; body?: string | Buffer; timeoutMs?: number }): Promise<Res> {
  const t0 = performance.now();
  return new Promise((resolveP, reject) => {
    const req = request({ host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path, headers: opts.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolveP({ status: res.statusCode ?? 0, headers: res.headers, text, json, ms: performance.now() - t0 });
      });
      res.on('error', reject);
    });
    req.setTimeout(opts.timeoutMs ?? 20_000, () => req.destroy(new Error(`client timeout after ${opts.timeoutMs ?? 20_000} ms`)));
    req.on('error', reject);
    if (opts.body !== undefined) req.end(opts.body);
    else req.end();
  });
}

export interface RawRes {
  raw: string;
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Status, headers (lower-cased names) and body of a raw HTTP/1.x reply. */
function parseRawReply(raw: string): RawRes {
  const [head = '', ...rest] = raw.split('\r\n\r\n');
  const lines = head.split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { raw, status, headers, body: rest.join('\r\n\r\n') };
}

/** Sends raw bytes on a fresh socket and collects the reply until close or idle timeout. */
export function rawSend(port: number, payload: string | Buffer, idleMs = 1500): Promise<RawRes> {
  return new Promise((resolveP, reject) => {
    const sock = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      if (timer) clearTimeout(timer);
      sock.destroy();
      resolveP(parseRawReply(Buffer.concat(chunks).toString('latin1')));
    };
    const arm = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(finish, idleMs);
    };
    sock.on('connect', () => {
      sock.write(payload);
      arm();
    });
    sock.on('data', (c: Buffer) => {
      chunks.push(c);
      arm();
    });
    sock.on('end', finish);
    sock.on('close', finish);
    sock.on('error', (e) => (chunks.length ? finish() : reject(e)));
  });
}

/** What `slowUpload` saw: the reply, whether the socket failed, and how much of the body it wrote. */
export interface UploadRes extends RawRes {
  socketError: string | undefined;
  bodyBytesWritten: number;
}

/**
 * Writes `head`, then `bodyBytes` bytes of body in 64 KiB pieces a few milliseconds apart,
 * as a client on a slow link would, and keeps reading the reply until the server closes.
 * A server that answers early and then resets the connection shows up as `socketError`.
 */
export function slowUpload(port: number, head: string, bodyBytes: number, chunked = false): Promise<UploadRes> {
  return new Promise((resolveP) => {
    const sock = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let socketError: string | undefined;
    let written = 0;
    let done = false;
    const piece = Buffer.alloc(64 * 1024, 'x');
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(guard);
      sock.destroy();
      resolveP({ ...parseRawReply(Buffer.concat(chunks).toString('latin1')), socketError, bodyBytesWritten: written });
    };
    const guard = setTimeout(finish, 15_000);
    const next = () => {
      if (done || sock.destroyed) return;
      if (written >= bodyBytes) {
        if (chunked) sock.write('0\r\n\r\n');
        return;
      }
      const n = Math.min(piece.length, bodyBytes - written);
      const data = piece.subarray(0, n);
      sock.write(chunked ? Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), data, Buffer.from('\r\n')]) : data);
      written += n;
      setTimeout(next, 3);
    };
    sock.on('connect', () => {
      sock.write(head);
      setTimeout(next, 3);
    });
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('end', finish);
    sock.on('close', finish);
    sock.on('error', (e: NodeJS.ErrnoException) => {
      socketError = e.code ?? e.message;
      finish();
    });
  });
}

export function keyHeader(k: KeyInfo | string): Record<string, string> {
  return { 'texture-api-key': typeof k === 'string' ? k : k.key };
}

/** Asserts the contract's error shape; returns the parsed body. */
export function errorBody(r: { json: unknown; headers: IncomingHttpHeaders | Record<string, string> }): {
  error: { status: number; code: string; message: string };
  requestId: string;
} {
  const ct = String((r.headers as Record<string, unknown>)['content-type'] ?? '');
  if (!ct.startsWith('application/json')) throw new Error(`error content-type is ${ct}`);
  const j = r.json as { error?: { status?: unknown; code?: unknown; message?: unknown }; requestId?: unknown };
  if (!j || typeof j !== 'object' || !j.error) throw new Error(`no error object: ${JSON.stringify(j)}`);
  if (typeof j.error.status !== 'number' || typeof j.error.code !== 'string' || typeof j.error.message !== 'string') throw new Error(`bad error object: ${JSON.stringify(j)}`);
  if (typeof j.requestId !== 'string' || j.requestId.length === 0) throw new Error(`no requestId: ${JSON.stringify(j)}`);
  return j as never;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Stack {
  backend: Backend;
  sidecar: Sidecar;
  keys: KeySet;
}

/**
 * The usual set-up of a black-box file (or describe block): a backend of our own, a key
 * set in a fresh store and a sidecar in front; the backend's record is reset before each test.
 */
export function useStack(): Stack {
  const stack = {} as Stack;
  beforeAll(async () => {
    stack.backend = await startBackend();
    stack.keys = await createKeySet();
    stack.sidecar = await startSidecar({ upstream: stack.backend.url, store: stack.keys.store });
  });
  afterAll(async () => {
    await stack.sidecar?.stop();
    await stack.backend?.close();
  });
  beforeEach(() => stack.backend?.reset());
  return stack;
}
