/**
 * Backends that read a request the way a named framework does, for the one-meaning
 * attacks: each is a real HTTP server on port 0 that records what it received and what it
 * *did* (the command it ran, the record it changed), so a test can assert that the
 * meaning Keygate judged is the only one the backend acted on. Nothing here imports src/.
 *
 * The application is the Texture device API of harness.ts (alice's and bob's devices and
 * commands) plus the EVRYTHNG thngs and places of policies/examples, a workspace secret
 * and the meta routes a scoped or connect key must never reach.
 */
import { execFile } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { BIN, DEVICES, type KeyInfo, type Received, ROOT } from './harness.ts';

const execFileP = promisify(execFile);

export interface Quirks {
  /** Rack: a POST without Content-Type is a form. */
  noTypeIsForm?: boolean;
  /** Which of two equal headers the framework reads: Node keeps the first, gunicorn and Werkzeug the last. */
  repeatedHeader?: 'first' | 'last';
  /** formidable v1: the body parser is picked by substring (/urlencoded/i), so `…urlencoded+json` is a form. */
  formBySubstring?: boolean;
  /** Go encoding/json, ASP.NET: JSON keys match field names case-insensitively, the last match wins. */
  caseInsensitiveKeys?: boolean;
  /** A C JSON parser: a key ends at NUL. */
  keysStopAtNul?: boolean;
  /** Laravel: input (query and body) wins over route parameters, and `_method` in the input overrides a POST. */
  laravel?: boolean;
  /** Express compression(), Rack::Deflater, Django GZipMiddleware: JSON answers gzipped when the request accepts gzip. */
  compress?: boolean;
  /** Rails' wrap_parameters: the controller reads `params[:command][:deviceId]`, where `params[:command]` is the body's own `command` object when it has one, else the whole body. */
  railsWrap?: boolean;
  /** The name of the Laravel route parameter (`{deviceId}`) the controller reads through `$request->…`; `id` when unset. */
  laravelRouteParam?: string;
  /** IIS URL Rewrite / older Symfony and Zend: X-Original-URL or X-Rewrite-URL (CGI spellings too) replace the path. */
  rewriteHeaders?: boolean;
  /** How query names are matched: Java's equalsIgnoreCase (first match wins), NFKC-normalised (first wins), or as Node does. */
  queryNames?: 'java' | 'nfkc' | 'exact';
  /** The backend ignores the referenceId filter (but honours serialNumber). */
  ignoreFilter?: boolean;
  /** JSON numbers read exactly (Go's int64, a BigInt) instead of as doubles. */
  exactNumbers?: boolean;
}

/** What the backend did because of a request: the state change or the data it chose. */
interface Effect {
  action: string;
  target: string;
  /** A list: the ids it returned. */
  items?: string[];
}

export interface FrameworkBackend {
  url: string;
  received: Received[];
  effects: Effect[];
  quirks: Quirks;
  /** A raw answer for a request, bypassing the application (for answer attacks). */
  respond?: ((rec: Received) => { status?: number; headers?: Record<string, string | string[]>; body: string } | undefined) | undefined;
  /** Requests other than Keygate's own attribute lookups. */
  requests(): Received[];
  reset(): void;
  close(): Promise<void>;
}

const THNGS = [
  { id: 'th_f1', customFields: { factoryId: 'f1' }, name: 'F1_THNG' },
  { id: 'th_f3', customFields: { factoryId: 'f3' }, name: 'F3_SECRET_THNG' },
];
const PLACES = [
  { id: 'pl_f1', customFields: { factoryId: 'f1' } },
  { id: 'pl_f3', customFields: { factoryId: 'f3' } },
];
/** Devices with numeric ids on both sides of 2^53: a float reads bob's …993 as alice's …992. */
export const BIG_ALICE = '9007199254740992';
export const BIG_BOB = '9007199254740993';
const SERIALS: Record<string, string> = { 'dev-alice-1': 'SN-A1', 'dev-alice-2': 'SN-A2', 'dev-bob-1': 'SN-B1', 'dev-bob-2': 'SN-B2' };

/** Java's String.equalsIgnoreCase: per UTF-16 unit, equal after upper-casing, or after upper- then lower-casing. */
function javaEqualsIgnoreCase(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    const ux = x.toUpperCase();
    const uy = y.toUpperCase();
    if (ux.length === 1 && uy.length === 1 && (ux === uy || ux.toLowerCase() === uy.toLowerCase())) continue;
    return false;
  }
  return true;
}

function headerOf(rec: Received, name: string, pick: 'first' | 'last', cgi: boolean): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < rec.rawHeaders.length; i += 2) {
    let n = rec.rawHeaders[i]!.toLowerCase();
    if (cgi) n = n.replaceAll('_', '-');
    if (n !== name) continue;
    if (pick === 'first' && found !== undefined) continue;
    found = rec.rawHeaders[i + 1]!;
  }
  return found;
}

type Params = Map<string, string>;

function jsonParams(text: string, q: Quirks): Record<string, unknown> | null {
  try {
    const value = JSON.parse(text, (_k, v, ctx?: { source?: string }) =>
      q.exactNumbers && typeof v === 'number' && ctx?.source !== undefined && /^-?\d+$/.test(ctx.source) ? BigInt(ctx.source) : v,
    ) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The body's fields as the framework reads them: a form, or JSON keys matched its way. */
function bodyParams(rec: Received, q: Quirks): Params {
  const out: Params = new Map();
  const type = headerOf(rec, 'content-type', q.repeatedHeader ?? 'first', false);
  const media = type === undefined ? undefined : type.split(';')[0]!.trim().toLowerCase();
  const text = rec.body.toString('utf8');
  const isForm =
    media === 'application/x-www-form-urlencoded' ||
    (q.formBySubstring === true && type !== undefined && /urlencoded/i.test(type)) ||
    (type === undefined && q.noTypeIsForm === true && rec.method === 'POST' && rec.body.length > 0);
  if (isForm) {
    for (const [k, v] of new URLSearchParams(text)) out.set(k, v);
    return out;
  }
  if (media === undefined || !/json/.test(media)) return out;
  const obj = jsonParams(text, q);
  if (obj === null) return out;
  for (const [rawKey, v] of Object.entries(obj)) {
    const key = q.keysStopAtNul ? rawKey.split('\u0000')[0]! : rawKey;
    const value = typeof v === 'string' ? v : typeof v === 'bigint' || typeof v === 'number' ? String(v) : JSON.stringify(v);
    if (q.caseInsensitiveKeys) {
      // Go: the field `deviceId` takes every key that matches it case-insensitively, in order.
      for (const field of ['deviceId', 'id', 'referenceId', '_method', 'name']) if (field.toLowerCase() === key.toLowerCase()) out.set(field, value);
    } else out.set(key, value);
  }
  return out;
}

/**
 * PHP's query registration (php_register_variable_ex): leading spaces are dropped, then a
 * space, a `.` and an unmatched `[` in a name become `_`; a later pair of one name wins.
 */
function phpQuery(u: URL): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of u.searchParams) {
    let name = k.replace(/^ +/, '');
    // An empty name (`[x]`, `.` is not empty) is dropped.
    if (name === '' || name.startsWith('[')) continue;
    const open = name.indexOf('[');
    if (open !== -1 && name.indexOf(']', open) !== -1) name = name.slice(0, open);
    out.set(name.replace(/[ .[]/g, '_'), v);
  }
  return out;
}

/** `params[:command]` under Rails' wrap_parameters for a JSON body. */
function railsWrapped(rec: Received): Record<string, unknown> | undefined {
  try {
    const obj = JSON.parse(rec.body.toString('utf8')) as Record<string, unknown>;
    const own = obj.command;
    return own !== null && typeof own === 'object' ? (own as Record<string, unknown>) : obj;
  } catch {
    return undefined;
  }
}

function queryParam(u: URL, name: string, q: Quirks): string[] {
  const mode = q.queryNames ?? 'exact';
  if (mode === 'exact') return u.searchParams.getAll(name);
  for (const [k, v] of u.searchParams) {
    if (mode === 'java' ? javaEqualsIgnoreCase(k, name) : k.normalize('NFKC') === name) return [v];
  }
  return [];
}

/** Answers of a backend with the `compress` quirk on. */
const COMPRESSING = new WeakSet<ServerResponse>();

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  if (COMPRESSING.has(res) && /\bgzip\b/.test(String(res.req.headers['accept-encoding'] ?? ''))) {
    const zipped = gzipSync(text);
    res.writeHead(status, { 'content-type': 'application/json', 'content-encoding': 'gzip', vary: 'Accept-Encoding', 'content-length': String(zipped.length), ...headers });
    res.end(zipped);
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

function list(data: unknown[]): { data: unknown[]; page: number; perPage: number; totalItems: number; totalPages: number } {
  return { data, page: 1, perPage: 50, totalItems: data.length, totalPages: Math.max(1, Math.ceil(data.length / 50)) };
}

export async function startFramework(quirks: Quirks = {}): Promise<FrameworkBackend> {
  const state: FrameworkBackend = {
    url: '',
    received: [],
    effects: [],
    quirks,
    respond: undefined,
    requests: () => state.received.filter((r) => r.headers['x-keygate-purpose'] !== 'attribute-lookup'),
    reset() {
      state.received.length = 0;
      state.effects.length = 0;
      state.respond = undefined;
    },
    close: async () => {},
  };
  const did = (action: string, target: string, items?: string[]): void => {
    state.effects.push(items === undefined ? { action, target } : { action, target, items });
  };

  function route(rec: Received, res: ServerResponse): void {
    const q = state.quirks;
    if (q.compress === true) COMPRESSING.add(res);
    const custom = state.respond?.(rec);
    if (custom !== undefined) {
      res.writeHead(custom.status ?? 200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(custom.body)), ...custom.headers });
      res.end(custom.body);
      return;
    }
    let target = rec.url;
    if (q.rewriteHeaders) target = headerOf(rec, 'x-original-url', 'first', true) ?? headerOf(rec, 'x-rewrite-url', 'first', true) ?? target;
    const u = new URL(target, 'http://backend');
    const seg = u.pathname.split('/').filter(Boolean);
    const body = bodyParams(rec, q);
    let method = rec.method;
    const input = (name: string): string | undefined => (q.laravel ? (body.get(name) ?? phpQuery(u).get(name) ?? undefined) : undefined);
    if (q.laravel && method === 'POST' && input('_method') !== undefined) method = input('_method')!.toUpperCase();
    // Laravel's $request->id (or ->deviceId, as the route names it): the input wins over the route parameter.
    const idOf = (routeId: string): string => input(q.laravelRouteParam ?? 'id') ?? routeId;
    const p = u.pathname;

    if (p === '/v1/workspaces/current/secrets') return send(res, 200, { id: 'ws-1', apiSecret: 'WORKSPACE_SECRET' });
    if (p === '/v1/batch-commands' && method === 'POST') {
      did('batch', 'all devices');
      return send(res, 202, { id: 'batch-1', status: 'queued' });
    }
    if (p === '/v1/api-keys' && method === 'POST') {
      did('create api key', 'workspace');
      return send(res, 201, { id: 'ak-new', key: 'api_MINTED_BY_ATTACK' });
    }
    if (p === '/v1/connections' && method === 'POST') return send(res, 201, { id: 'conn-1', linkToken: 'lt', linkUrl: 'https://x/connect' });
    if (seg[0] === 'v1' && seg[1] === 'devices') {
      if (seg.length === 2 && method === 'GET') {
        const refs = queryParam(u, 'referenceId', q).flatMap((r) => r.split(','));
        const serial = u.searchParams.get('serialNumber');
        let data = DEVICES.map((d) => ({ ...d, serialNumber: SERIALS[d.id] }));
        if (!q.ignoreFilter && refs.length > 0) data = data.filter((d) => refs.includes(d.referenceId));
        if (serial !== null) data = data.filter((d) => d.serialNumber === serial);
        did(
          'list devices',
          refs.join(',') || '(everyone)',
          data.map((d) => d.id),
        );
        // Headers about the result, as many frameworks add them.
        return send(res, 200, list(data), {
          etag: `"${data.map((d) => d.id).join('+') || 'empty'}"`,
          'x-total-count': String(data.length),
          'last-modified': data.length > 0 ? 'Tue, 01 Dec 2026 10:00:00 GMT' : 'Mon, 30 Nov 2026 10:00:00 GMT',
        });
      }
      if (seg[2] === BIG_ALICE || seg[2] === BIG_BOB) return send(res, 200, `{"id":${seg[2]},"referenceId":"${seg[2] === BIG_ALICE ? 'alice' : 'bob'}"}`);
      const dev = DEVICES.find((d) => d.id === (seg.length >= 3 && rec.headers['x-keygate-purpose'] !== 'attribute-lookup' ? idOf(seg[2]!) : seg[2]));
      if (dev === undefined) return send(res, 404, { error: 'device not found' });
      if (seg.length === 3 && method === 'GET') return send(res, 200, dev);
      if (seg.length === 3 && method === 'DELETE') {
        did('delete device', dev.id);
        return send(res, 200, { deleted: dev.id });
      }
      if (seg.length === 4 && method === 'GET') {
        did(`read ${seg[3]}`, dev.id);
        return send(res, 200, list([{ id: `${seg[3]}-${dev.id}`, deviceId: dev.id, secret: dev.secret }]));
      }
      return send(res, 404, { error: 'not found' });
    }
    if (seg[0] === 'v1' && seg[1] === 'commands') {
      if (seg.length === 4 && method === 'POST') {
        const wrapped = q.railsWrap === true ? railsWrapped(rec)?.deviceId : undefined;
        const deviceId = (typeof wrapped === 'string' ? wrapped : undefined) ?? body.get('deviceId') ?? '(none)';
        did('command', deviceId);
        return send(res, 201, { id: 'cmd-new', deviceId, status: 'pending' });
      }
      if (seg.length === 4 && method === 'DELETE') {
        did('cancel every command', `${seg[2]}/${seg[3]}`);
        return send(res, 200, { cancelled: 'all' });
      }
      if (seg.length === 3 && method === 'GET') return send(res, 200, { id: seg[2], deviceId: seg[2] === 'cmd-bob-1' ? 'dev-bob-1' : 'dev-alice-1', note: 'CMD' });
    }
    if (seg[0] === 'thngs' || seg[0] === 'places') {
      const all = seg[0] === 'thngs' ? THNGS : PLACES;
      if (seg.length === 1 && method === 'GET') return send(res, 200, all);
      const lookup = rec.headers['x-keygate-purpose'] === 'attribute-lookup';
      const item = all.find((t) => t.id === (lookup ? seg[1] : idOf(seg[1]!)));
      if (item === undefined) return send(res, 404, { error: 'not found' });
      if (method === 'GET') return send(res, 200, item);
      if (method === 'PUT' || method === 'PATCH') {
        did(`update ${seg[0]}`, item.id);
        return send(res, 200, item);
      }
      if (method === 'DELETE') {
        did(`delete ${seg[0]}`, item.id);
        return send(res, 200, { deleted: item.id });
      }
    }
    return send(res, 404, { error: 'not found', path: p });
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rec: Received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks) };
      state.received.push(rec);
      route(rec, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no address');
  state.url = `http://127.0.0.1:${addr.port}`;
  state.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return state;
}

/** `keygate keys create` with any flags (access tokens: --role, --condition); the JSON it prints, or the failure. */
export async function cliKey(store: string, args: string[]): Promise<KeyInfo> {
  const { stdout } = await execFileP(process.execPath, [BIN, 'keys', 'create', '--store', store, '--json', ...args], { cwd: ROOT });
  const line = stdout
    .trim()
    .split('\n')
    .find((l) => l.trim().startsWith('{'));
  if (line === undefined) throw new Error(`keys create printed no JSON: ${stdout}`);
  return JSON.parse(line) as KeyInfo;
}
