import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Command, type Device, demoDevices, page } from './data.ts';
import { manufacturerStep } from './manufacturer-step.ts';

/** What the backend saw: tests assert on these, not only on what the client got. */
interface ReceivedRequest {
  readonly method: string;
  readonly url: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingMessage['headers'];
  readonly rawHeaders: string[];
  readonly body: string;
}

/** Switches tests flip to make the backend misbehave. */
interface BackendBehaviour {
  /** Return every device from GET /v1/devices whatever the filter (a backend that ignores referenceId). */
  ignoreFilter: boolean;
  /** Delay every answer by this many ms (a slow backend). */
  delayMs: number;
  /** Answer GET /v1/commands/{id} with this deviceId instead of the stored one. */
  commandDeviceOverride: string | null;
  /** Keygate's origin: the device step sends the browser back nowhere else (null: any host, for tests that start it before Keygate). */
  returnOrigin: string | null;
}

export interface DemoBackend {
  readonly server: Server;
  readonly url: string;
  readonly port: number;
  readonly devices: Device[];
  readonly commands: Map<string, Command>;
  readonly received: ReceivedRequest[];
  readonly behaviour: BackendBehaviour;
  /** Keep the request log (tests); the bench turns it off. */
  record: boolean;
  close(): Promise<void>;
}

export interface DemoBackendOptions {
  port?: number;
  host?: string;
  users?: readonly string[];
  devicesPerUser?: number;
  record?: boolean;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function notFound(res: ServerResponse, what: string): void {
  send(res, 404, { error: { status: 404, message: `${what} not found` } });
}

type Handler = (req: IncomingMessage, res: ServerResponse, parts: string[], query: URLSearchParams, body: string) => void;

/**
 * A Texture-like device backend that knows nothing about API keys. Filters by
 * `referenceId` (comma-separated values mean any-of) like the real API, so the tests can
 * show what Keygate forwarded and what a misbehaving backend would leak.
 */
export async function startDemoBackend(options: DemoBackendOptions = {}): Promise<DemoBackend> {
  const devices = demoDevices(options.users, options.devicesPerUser);
  const commands = new Map<string, Command>();
  const received: ReceivedRequest[] = [];
  const behaviour: BackendBehaviour = { ignoreFilter: false, delayMs: 0, commandDeviceOverride: null, returnOrigin: null };
  const collections = new Map<string, Array<Record<string, unknown>>>();
  for (const name of ['sites', 'contacts', 'customers', 'programs', 'enrollments', 'api-keys']) collections.set(name, [{ id: `${name}_1`, name: `Demo ${name} 1` }]);
  let nextId = 1;

  const device = (id: string | undefined): Device | undefined => devices.find((d) => d.id === id);

  const routes: Handler = (req, res, parts, query, body) => {
    const method = req.method ?? 'GET';
    const [v1, resource, id, sub, extra] = parts;
    if (v1 !== 'v1') return notFound(res, 'route');
    if (resource === 'devices') {
      if (id === undefined && method === 'GET') {
        const wanted = query.get('referenceId')?.split(',');
        const list = behaviour.ignoreFilter || wanted === undefined ? devices : devices.filter((d) => wanted.includes(d.referenceId));
        return send(res, 200, page(list, Number(query.get('page') ?? 1), Number(query.get('perPage') ?? 50)));
      }
      const d = device(id);
      if (d === undefined) return notFound(res, 'device');
      if (sub === undefined && method === 'GET') return send(res, 200, d);
      if (sub === undefined && method === 'DELETE') {
        devices.splice(devices.indexOf(d), 1);
        return send(res, 200, { id: d.id, deleted: true });
      }
      if (sub === 'tags' && method === 'PUT') {
        d.tags = (JSON.parse(body || '{}') as { tags?: string[] }).tags ?? [];
        return send(res, 200, d);
      }
      if (sub === 'tags' && method === 'GET')
        return send(
          res,
          200,
          page(
            d.tags.map((t) => ({ name: t })),
            1,
            50,
          ),
        );
      if (sub === 'commands' && method === 'GET')
        return send(
          res,
          200,
          page(
            [...commands.values()].filter((c) => c.deviceId === d.id),
            1,
            50,
          ),
        );
      if ((sub === 'history' || sub === 'alerts' || sub === 'schedules') && method === 'GET' && extra === undefined) {
        const items = sub === 'history' ? [{ deviceId: d.id, timestamp: '2026-01-05T10:00:00.000Z', state: d.state }] : [];
        return send(res, 200, page(items, 1, 50));
      }
      return notFound(res, 'route');
    }
    if (resource === 'commands') {
      if (method === 'POST' && id !== undefined && sub !== undefined) {
        const input = JSON.parse(body || '{}') as { deviceId?: string; input?: unknown };
        const d = device(input.deviceId);
        if (d === undefined) return notFound(res, 'device');
        const cmd: Command = { id: `cmd_${nextId++}`, deviceId: d.id, deviceType: id, action: sub, input: input.input ?? null, status: 'pending', createdAt: new Date().toISOString() };
        commands.set(cmd.id, cmd);
        return send(res, 201, cmd);
      }
      if (method === 'GET' && id !== undefined && sub === undefined) {
        const cmd = commands.get(id);
        if (cmd === undefined) return notFound(res, 'command');
        return send(res, 200, behaviour.commandDeviceOverride === null ? cmd : { ...cmd, deviceId: behaviour.commandDeviceOverride });
      }
      return notFound(res, 'route');
    }
    if (resource === 'batch-commands' && method === 'POST') return send(res, 202, { id: `batch_${nextId++}`, status: 'accepted' });
    if (resource === 'connections' && method === 'POST') {
      const cid = `conn_${nextId++}`;
      return send(res, 201, { id: cid, url: `https://connect.example.test/${cid}` });
    }
    const coll = resource === undefined ? undefined : collections.get(resource);
    if (coll !== undefined) {
      if (id === undefined && method === 'GET') return send(res, 200, page(coll, 1, 50));
      if (id === undefined && method === 'POST') {
        const item = { ...(JSON.parse(body || '{}') as object), id: `${resource}_${nextId++}` };
        coll.push(item);
        return send(res, 201, item);
      }
      const item = coll.find((x) => x.id === id);
      if (item === undefined) return notFound(res, resource!);
      if (method === 'GET') return send(res, 200, item);
      if (method === 'DELETE') {
        coll.splice(coll.indexOf(item), 1);
        return send(res, 200, { id, deleted: true });
      }
      if (method === 'PUT' || method === 'PATCH') {
        Object.assign(item, JSON.parse(body || '{}') as object, { id });
        return send(res, 200, item);
      }
    }
    return notFound(res, 'route');
  };

  const backend: DemoBackend = {
    server: createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = req.url ?? '/';
        const q = url.indexOf('?');
        const path = q === -1 ? url : url.slice(0, q);
        const query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
        const body = Buffer.concat(chunks).toString('utf8');
        if (backend.record) received.push({ method: req.method ?? 'GET', url, path, query, headers: req.headers, rawHeaders: req.rawHeaders, body });
        const run = (): void => {
          try {
            if (manufacturerStep(req.method ?? 'GET', path, query, body, devices, res, behaviour.returnOrigin)) return;
            routes(req, res, path.split('/').slice(1).map(decodeURIComponent), query, body);
          } catch (err) {
            send(res, 400, { error: { status: 400, message: (err as Error).message } });
          }
        };
        if (behaviour.delayMs > 0) setTimeout(run, behaviour.delayMs);
        else run();
      });
    }),
    url: '',
    port: 0,
    devices,
    commands,
    received,
    behaviour,
    record: options.record ?? true,
    close: () =>
      new Promise((resolve) => {
        backend.server.closeAllConnections();
        backend.server.close(() => resolve());
      }),
  };
  backend.server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    backend.server.once('error', reject);
    backend.server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      backend.server.off('error', reject);
      resolve();
    });
  });
  const port = (backend.server.address() as AddressInfo).port;
  Object.assign(backend, { port, url: `http://127.0.0.1:${port}` });
  return backend;
}
