import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ServeConfig } from '../config.ts';
import { KeyCache } from '../keys/key-cache.ts';
import { openStore } from '../keys/open-store.ts';
import type { KeyStore } from '../keys/store.ts';
import type { Loggers } from '../observability/logger.ts';
import { Metrics } from '../observability/metrics.ts';
import { BackendAttributes } from '../pipeline/attributes.ts';
import { createUpstream } from '../pipeline/upstream.ts';
import { loadPolicy } from '../policy/load.ts';
import { PolicyHolder } from '../policy/policy-holder.ts';
import { PolicyReloader, watchPolicies } from '../policy/watch.ts';
import { createOpsRouter, localOps, type OpsSources } from './ops-handler.ts';
import { createProxyHandler } from './proxy-handler.ts';

// Listener limits: a client that trickles headers or a body cannot hold a socket forever.
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;

/** `Ops` is null in a cluster worker: the primary serves the ops listener for the group. */
export interface RunningKeygate<Ops extends AddressInfo | null = AddressInfo> {
  readonly proxy: AddressInfo;
  readonly ops: Ops;
  /** This process's readiness and metrics (what its ops listener serves, or the primary asks for). */
  readonly local: OpsSources;
  readonly keys: KeyCache;
  readonly metrics: Metrics;
  readonly store: KeyStore;
  readonly policy: PolicyHolder;
  /** Reloads the policy once its files read the same twice (see PolicyReloader). */
  reload(reason: string): void;
  /** Stop accepting, let in-flight requests finish (bounded by drainTimeoutMs), release everything. */
  shutdown(): Promise<void>;
}

function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

export interface StartOptions {
  /** false in a cluster worker (see RunningKeygate). */
  readonly opsListener: false;
}

/** Loads policies and the store, fails fast on either, then opens both listeners. */
export async function startKeygate(config: ServeConfig, loggers: Loggers): Promise<RunningKeygate>;
export async function startKeygate(config: ServeConfig, loggers: Loggers, options: StartOptions): Promise<RunningKeygate<null>>;
export async function startKeygate(config: ServeConfig, loggers: Loggers, options?: StartOptions): Promise<RunningKeygate<AddressInfo | null>> {
  const logger = loggers.logger;
  const policy = new PolicyHolder(loadPolicy(config.policies));
  const store = await openStore(config.store);
  const metrics = new Metrics();
  metrics.policyInfo.labels(policy.current.version).set(1);
  const keys = new KeyCache(store, config.keyCache, metrics.keyCacheObserver());
  store.onFileChange?.((change) => logger[change.kind === 'reopened' ? 'warn' : 'error']({ store: store.kind, change: change.kind }, change.message));
  const upstream = createUpstream(config.upstream, config.upstreamOptions);
  const attributes = new BackendAttributes(upstream);
  metrics.watch({
    droppedLogLines: () => loggers.droppedLines(),
    cacheSizes: () => ({ key_positive: keys.sizes.positive, key_negative: keys.sizes.negative, attributes: attributes.size }),
  });
  let draining = false;

  const proxyServer = createServer(
    { headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS },
    createProxyHandler({ policy, keys, upstream, attributes, access: loggers.access, metrics, maxBodyBytes: config.maxBodyBytes }),
  );
  const local = localOps({ policy, store, metrics, isDraining: () => draining });
  const opsServer = createServer(createOpsRouter(local));
  const proxy = await listen(proxyServer, config.listen.host, config.listen.port);
  const ops = options?.opsListener === false ? null : await listen(opsServer, config.opsListen.host, config.opsListen.port);

  const reloader = new PolicyReloader(config.policies, policy, logger, metrics);
  const reload = (reason: string): void => reloader.request(reason);
  const watcher = config.watchPolicies ? watchPolicies(config.policies, () => reload('file changed')) : null;

  return {
    proxy,
    ops,
    local,
    keys,
    metrics,
    store,
    policy,
    reload,
    async shutdown() {
      draining = true;
      watcher?.close();
      reloader.close();
      const closed = new Promise<void>((resolve) => proxyServer.close(() => resolve()));
      // Idle keep-alive sockets would hold close() open; busy ones close after their response.
      proxyServer.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), config.drainTimeoutMs);
      });
      if ((await Promise.race([closed, timedOut])) === 'timeout') {
        logger.warn({ drainTimeoutMs: config.drainTimeoutMs }, 'drain timeout: closing remaining connections');
        proxyServer.closeAllConnections();
      }
      clearTimeout(timer);
      opsServer.closeAllConnections();
      await new Promise<void>((resolve) => opsServer.close(() => resolve()));
      await upstream.close().catch(() => undefined);
      await store.close();
    },
  };
}
