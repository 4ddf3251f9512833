import { isIP } from 'node:net';
import { UsageError, flag, type ParsedArgs } from './cli/args.ts';
import { DEFAULT_KEY_CACHE, type KeyCacheOptions } from './keys/key-cache.ts';
import { DEFAULT_STORE } from './keys/open-store.ts';
import { DEFAULT_MAX_BODY_BYTES } from './pipeline/request-body.ts';
import { DEFAULT_UPSTREAM, type UpstreamOptions } from './pipeline/upstream.ts';

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
}

export const DEFAULT_LISTEN = '0.0.0.0:8080';
export const DEFAULT_OPS_LISTEN = '127.0.0.1:9090';
export const DEFAULT_POLICIES = './policies';
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;

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
    },
    keyCache: { ...DEFAULT_KEY_CACHE, positiveTtlMs: keyCacheTtl },
    maxBodyBytes: maxBody === undefined ? DEFAULT_MAX_BODY_BYTES : positiveInt(maxBody, '--max-body', 'bytes'),
    drainTimeoutMs: drain === undefined ? DEFAULT_DRAIN_TIMEOUT_MS : positiveInt(drain, '--drain-timeout', 'milliseconds'),
    watchPolicies: (get('watch-policies') ?? 'true') !== 'false',
    workers: workers === undefined ? 1 : positiveInt(workers, '--workers', 'processes'),
    trustProxy: args.flags.has('trust-proxy')
      ? parseTrustProxy(args.flags.get('trust-proxy')!)
      : parseTrustProxy(env.KEYGATE_TRUST_PROXY ? [env.KEYGATE_TRUST_PROXY] : [], 'KEYGATE_TRUST_PROXY'),
  });
}
