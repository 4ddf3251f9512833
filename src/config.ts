import { isIP } from 'node:net';
import { UsageError, flag, type ParsedArgs } from './cli/args.ts';
import { DEFAULT_KEY_CACHE, type KeyCacheOptions } from './keys/key-cache.ts';
import { DEFAULT_STORE } from './keys/open-store.ts';
import { ADMISSION_CLASSES, defaultShares, MIN_CONNECTIONS, sharesProblem, type AdmissionClass, type AdmissionOptions, type Share } from './pipeline/admission.ts';
import { DEFAULT_BODY_TIMEOUT_MS, DEFAULT_MAX_BODY_BYTES } from './pipeline/request-body.ts';
import { DEFAULT_UPSTREAM, type UpstreamOptions } from './pipeline/upstream.ts';
import { DEFAULT_FIRST_BYTE_TIMEOUT_MS, DEFAULT_HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS, type ConnectionDeadlines } from './server/connections.ts';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface ServeConfig {
  readonly upstream: string;
  readonly listen: HostPort;
  readonly opsListen: HostPort;
  readonly policies: string;
  readonly store: string;
  readonly upstreamOptions: UpstreamOptions;
  readonly keyCache: KeyCacheOptions;
  readonly maxBodyBytes: number;
  readonly drainTimeoutMs: number;
  readonly watchPolicies: boolean;
  readonly workers: number;
  /** `--trust-proxy`: the hops (`address/prefix`) whose forwarding headers and request id are kept. */
  readonly trustProxy: readonly string[];
  /** Backend pool shares per key type, queue bounds, body memory per key type. */
  readonly admission: AdmissionOptions;
  /** Total time a body Keygate reads before dispatch may take (public keys, keys with conditions). */
  readonly bodyTimeoutMs: number;
  readonly deadlines: ConnectionDeadlines;
  /** Client connections the proxy listener holds at once; 'auto': derived from the open-file limit at start. */
  readonly maxConnections: number | 'auto';
}

export const DEFAULT_LISTEN = '0.0.0.0:8080';
export const DEFAULT_OPS_LISTEN = '127.0.0.1:9090';
export const DEFAULT_POLICIES = './policies';
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
export const DEFAULT_UPSTREAM_QUEUE = 1024;
export const DEFAULT_UPSTREAM_QUEUE_TIMEOUT_MS = 1_000;
/** Body memory per key type, in bodies of --max-body: what Keygate may hold while it reads bodies before dispatch. */
export const BODY_MEMORY_BODIES = 32;

/** Every serve option: flag name, environment variable. Documented in the README's table. */
export const SERVE_OPTIONS = {
  upstream: 'KEYGATE_UPSTREAM',
  listen: 'KEYGATE_LISTEN',
  'ops-listen': 'KEYGATE_OPS_LISTEN',
  policies: 'KEYGATE_POLICIES',
  store: 'KEYGATE_STORE',
  'upstream-timeout': 'KEYGATE_UPSTREAM_TIMEOUT',
  'upstream-body-timeout': 'KEYGATE_UPSTREAM_BODY_TIMEOUT',
  'max-body': 'KEYGATE_MAX_BODY',
  'key-cache-ttl': 'KEYGATE_KEY_CACHE_TTL',
  'drain-timeout': 'KEYGATE_DRAIN_TIMEOUT',
  'watch-policies': 'KEYGATE_WATCH_POLICIES',
  workers: 'KEYGATE_WORKERS',
  'trust-proxy': 'KEYGATE_TRUST_PROXY',
  'upstream-connections': 'KEYGATE_UPSTREAM_CONNECTIONS',
  'upstream-share': 'KEYGATE_UPSTREAM_SHARE',
  'upstream-queue': 'KEYGATE_UPSTREAM_QUEUE',
  'upstream-queue-timeout': 'KEYGATE_UPSTREAM_QUEUE_TIMEOUT',
  'body-timeout': 'KEYGATE_BODY_TIMEOUT',
  'first-byte-timeout': 'KEYGATE_FIRST_BYTE_TIMEOUT',
  'headers-timeout': 'KEYGATE_HEADERS_TIMEOUT',
  'max-connections': 'KEYGATE_MAX_CONNECTIONS',
} as const;

export function parseHostPort(value: string, option: string): HostPort {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(value);
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || port > 65535) throw new UsageError(`${option}: "${value}" is not HOST:PORT (e.g. 0.0.0.0:8080)`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

function positiveInt(value: string, option: string, unit: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${option}: "${value}" must be a positive whole number of ${unit}`);
  return n;
}

/**
 * `--trust-proxy CIDR…` (repeatable, or comma-separated; KEYGATE_TRUST_PROXY comma-separated):
 * IPv4 or IPv6 addresses, each with an optional `/prefix`, as `address/prefix`.
 */
export function parseTrustProxy(values: readonly string[], option = '--trust-proxy'): readonly string[] {
  const out: string[] = [];
  for (const value of values) {
    for (const part of value.split(',')) {
      const entry = part.trim();
      if (entry === '') continue;
      const slash = entry.indexOf('/');
      const address = slash === -1 ? entry : entry.slice(0, slash);
      const family = isIP(address);
      const max = family === 6 ? 128 : 32;
      const prefix = slash === -1 ? max : /^\d{1,3}$/.test(entry.slice(slash + 1)) ? Number(entry.slice(slash + 1)) : NaN;
      if (family === 0 || !(prefix >= 0 && prefix <= max)) throw new UsageError(`${option}: "${entry}" is not an IP address or CIDR range (e.g. 10.0.0.0/8, fd00::/8, 192.0.2.7)`);
      out.push(`${address}/${prefix}`);
    }
  }
  return Object.freeze(out);
}

/**
 * `--upstream-share TYPE=RESERVE:MAX[,TYPE=RESERVE:MAX…]`: the classes named replace their
 * defaults (which scale with --upstream-connections); the rest keep theirs.
 */
export function parseShares(value: string | undefined, connections: number): Record<AdmissionClass, Share> {
  const shares = defaultShares(connections);
  if (value !== undefined) {
    for (const part of value.split(',')) {
      const m = /^\s*([a-z-]+)=(\d+):(\d+)\s*$/.exec(part);
      if (m === null) throw new UsageError(`--upstream-share: "${part}" is not TYPE=RESERVE:MAX (e.g. scoped=8:96)`);
      const name = m[1]!;
      if (!(ADMISSION_CLASSES as readonly string[]).includes(name)) {
        throw new UsageError(`--upstream-share: "${name}" is not one of ${ADMISSION_CLASSES.join(', ')}`);
      }
      shares[name as AdmissionClass] = { reserve: Number(m[2]), max: Number(m[3]) };
    }
  }
  const problem = sharesProblem(connections, shares);
  if (problem !== undefined) throw new UsageError(`--upstream-share: ${problem} (--upstream-connections ${connections})`);
  return shares;
}

function optionalInt(value: string | undefined, option: string, unit: string, fallback: number): number {
  return value === undefined ? fallback : positiveInt(value, option, unit);
}

/** Flags win over environment variables, which win over defaults. Checked once, then frozen. */
export function serveConfig(args: ParsedArgs, env: NodeJS.ProcessEnv = process.env): ServeConfig {
  const get = (name: keyof typeof SERVE_OPTIONS): string | undefined => flag(args, name) ?? (env[SERVE_OPTIONS[name]] || undefined);
  const upstream = get('upstream');
  if (upstream === undefined) throw new UsageError('--upstream URL (or KEYGATE_UPSTREAM) is required: the backend Keygate protects');
  let url: URL;
  try {
    url = new URL(upstream);
  } catch {
    throw new UsageError(`--upstream: "${upstream}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--upstream: "${upstream}" must be http:// or https://`);
  if (url.pathname !== '/' || url.search !== '') throw new UsageError(`--upstream: "${upstream}" must be an origin without a path (Keygate forwards paths unchanged)`);
  const timeout = get('upstream-timeout');
  const bodyTimeout = get('upstream-body-timeout');
  const ttl = get('key-cache-ttl');
  const maxBody = get('max-body');
  const drain = get('drain-timeout');
  const workers = get('workers');
  const connections = optionalInt(get('upstream-connections'), '--upstream-connections', 'connections', DEFAULT_UPSTREAM.connections);
  if (connections < MIN_CONNECTIONS) throw new UsageError(`--upstream-connections: at least ${MIN_CONNECTIONS} (one reserved per key type and lookups, and some to share)`);
  const maxBodyBytes = optionalInt(maxBody, '--max-body', 'bytes', DEFAULT_MAX_BODY_BYTES);
  const headersMs = optionalInt(get('headers-timeout'), '--headers-timeout', 'milliseconds', DEFAULT_HEADERS_TIMEOUT_MS);
  if (headersMs > REQUEST_TIMEOUT_MS) throw new UsageError(`--headers-timeout: at most ${REQUEST_TIMEOUT_MS} ms (the whole request's limit)`);
  const bodyTimeoutMs = optionalInt(get('body-timeout'), '--body-timeout', 'milliseconds', DEFAULT_BODY_TIMEOUT_MS);
  if (bodyTimeoutMs > REQUEST_TIMEOUT_MS) throw new UsageError(`--body-timeout: at most ${REQUEST_TIMEOUT_MS} ms (the whole request's limit)`);
  const maxConnections = get('max-connections');
  const keyCacheTtl = ttl === undefined ? DEFAULT_KEY_CACHE.positiveTtlMs : positiveInt(ttl, '--key-cache-ttl', 'milliseconds');
  if (keyCacheTtl > 5000) throw new UsageError('--key-cache-ttl: at most 5000 ms, the documented revocation bound');
  return Object.freeze({
    upstream: url.origin,
    listen: parseHostPort(get('listen') ?? DEFAULT_LISTEN, '--listen'),
    opsListen: parseHostPort(get('ops-listen') ?? DEFAULT_OPS_LISTEN, '--ops-listen'),
    policies: get('policies') ?? DEFAULT_POLICIES,
    store: get('store') ?? DEFAULT_STORE,
    upstreamOptions: {
      ...DEFAULT_UPSTREAM,
      ...(timeout === undefined ? {} : { headersTimeoutMs: positiveInt(timeout, '--upstream-timeout', 'milliseconds') }),
      ...(bodyTimeout === undefined ? {} : { bodyTimeoutMs: positiveInt(bodyTimeout, '--upstream-body-timeout', 'milliseconds') }),
      connections,
    },
    keyCache: { ...DEFAULT_KEY_CACHE, positiveTtlMs: keyCacheTtl },
    maxBodyBytes,
    drainTimeoutMs: drain === undefined ? DEFAULT_DRAIN_TIMEOUT_MS : positiveInt(drain, '--drain-timeout', 'milliseconds'),
    watchPolicies: (get('watch-policies') ?? 'true') !== 'false',
    workers: workers === undefined ? 1 : positiveInt(workers, '--workers', 'processes'),
    trustProxy: args.flags.has('trust-proxy')
      ? parseTrustProxy(args.flags.get('trust-proxy')!)
      : parseTrustProxy(env.KEYGATE_TRUST_PROXY ? [env.KEYGATE_TRUST_PROXY] : [], 'KEYGATE_TRUST_PROXY'),
    admission: {
      connections,
      shares: parseShares(get('upstream-share'), connections),
      queueLength: optionalInt(get('upstream-queue'), '--upstream-queue', 'requests', DEFAULT_UPSTREAM_QUEUE),
      queueTimeoutMs: optionalInt(get('upstream-queue-timeout'), '--upstream-queue-timeout', 'milliseconds', DEFAULT_UPSTREAM_QUEUE_TIMEOUT_MS),
      bodyBytes: BODY_MEMORY_BODIES * maxBodyBytes,
    },
    bodyTimeoutMs,
    deadlines: {
      firstByteMs: optionalInt(get('first-byte-timeout'), '--first-byte-timeout', 'milliseconds', DEFAULT_FIRST_BYTE_TIMEOUT_MS),
      headersMs,
    },
    maxConnections: maxConnections === undefined || maxConnections === 'auto' ? 'auto' : positiveInt(maxConnections, '--max-connections', 'connections (or auto)'),
  });
}
