import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ServeConfig } from '../config/serve-config.ts';
import { KeyCache } from '../keys/key-cache.ts';
import { openStore } from '../keys/open-store.ts';
import type { KeyStore } from '../keys/store.ts';
import type { Loggers } from '../observability/logger.ts';
import { Metrics } from '../observability/metrics.ts';
import { BackendAttributes } from '../pipeline/attributes.ts';
import { createUpstream } from '../pipeline/upstream.ts';
import { loadPolicy } from '../policy/load.ts';
import { PolicyHolder } from '../policy/policy-holder.ts';
import { reloadPolicy, watchPolicies } from '../policy/watch.ts';
import { createOpsHandler } from './ops-handler.ts';
import { createProxyHandler } from './proxy-handler.ts';

// Listener limits: a client that trickles headers or a body cannot hold a socket forever.
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;

export interface RunningKeygate {
  readonly proxy: AddressInfo;
  readonly ops: AddressInfo;
  readonly keys: KeyCache;
  readonly store: KeyStore;
  readonly policy: PolicyHolder;
  reload(reason: string): boolean;
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

/** Loads policies and the store, fails fast on either, then opens both listeners. */
export async function startKeygate(config: ServeConfig, loggers: Loggers): Promise<RunningKeygate> {
  const logger = loggers.logger;
  const policy = new PolicyHolder(loadPolicy(config.policies));
  const store = await openStore(config.store, { create: true });
  const metrics = new Metrics();
  metrics.policyInfo.labels(policy.current.version).set(1);
  const keys = new KeyCache(store, config.keyCache, metrics.keyCacheObserver());
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
  const opsServer = createServer(createOpsHandler({ policy, store, metrics, isDraining: () => draining }));
  const proxy = await listen(proxyServer, config.listen.host, config.listen.port);
  const ops = await listen(opsServer, config.opsListen.host, config.opsListen.port);

  const reload = (reason: string): boolean => reloadPolicy(config.policies, policy, logger, metrics, reason);
  const watcher = config.watchPolicies ? watchPolicies(config.policies, () => reload('file changed')) : null;

  return {
    proxy,
    ops,
    keys,
    store,
    policy,
    reload,
    async shutdown() {
      draining = true;
      watcher?.close();
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
