import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge } from 'prom-client';
import { checkNoEscalation } from '../admin/escalation.ts';
import type { ServeConfig } from '../config/serve-config.ts';
import { ConnectRuntime } from '../connect/connect-runtime.ts';
import { openLinkStore } from '../connect/open-link-store.ts';
import { BrowserGuard } from '../cors/browser-guard.ts';
import { exposureReport } from '../cors/exposure.ts';
import { KnownOrigins } from '../cors/known-origins.ts';
import { connectKeyOrigins } from '../cors/origin-source.ts';
import { ExpiryWatch } from '../keys/expiry-watch.ts';
import { KeyCache } from '../keys/key-cache.ts';
import { hashKey } from '../keys/key-format.ts';
import { KeyService } from '../keys/key-service.ts';
import { UsageRecorder } from '../keys/last-used.ts';
import { openStore } from '../keys/open-store.ts';
import type { KeyStore } from '../keys/store.ts';
import type { Loggers } from '../observability/logger.ts';
import { Metrics } from '../observability/metrics.ts';
import { ADMISSION_CLASSES, Admission } from '../pipeline/admission.ts';
import { AnswerBudget } from '../pipeline/forwarding/answer-budget.ts';
import { trustedHops } from '../pipeline/forwarding/trusted-hops.ts';
import { createUpstream } from '../pipeline/forwarding/upstream.ts';
import { admitLookups } from '../pipeline/proving/admitted-lookups.ts';
import { BackendAttributes } from '../pipeline/proving/attributes.ts';
import { connectWarnings } from '../policy/connect-section.ts';
import { loadPolicy } from '../policy/load.ts';
import { PolicyHolder } from '../policy/policy-holder.ts';
import { PolicyReloader, watchPolicies } from '../policy/watch.ts';
import { createServer } from '../util/node-http.ts';
import { answerClientError, connectRefusal, PROXY_METHODS } from './client-error.ts';
import { ListenerConnections, listenerOptions } from './connections.ts';
import { MIN_PROXY_CONNECTIONS, openFileLimit, proxyConnectionCap } from './fd-limit.ts';
import { type CutReason, HeldAnswers } from './held-answers.ts';
import { exposedGc, MemorySettle } from './memory-settle.ts';
import { createOpsRouter, localOps, type OpsSources } from './ops-handler.ts';
import { createProxyHandler } from './proxy-handler.ts';
import { startRateLimiting } from './rate-limiting.ts';
import { servedRoutes } from './served-routes.ts';

/** `Ops` is null in a cluster worker: the primary serves the ops listener for the group. */
export interface RunningKeygate<Ops extends AddressInfo | null = AddressInfo> {
  readonly proxy: AddressInfo;
  readonly ops: Ops;
  /** This process's readiness and metrics (what its ops listener serves, or the primary asks for). */
  readonly local: OpsSources;
  readonly keys: KeyCache;
  /** The key service the management API and the Connect flow use (the same store). */
  readonly keyService: KeyService;
  readonly metrics: Metrics;
  readonly store: KeyStore;
  readonly policy: PolicyHolder;
  /** Backend connections and body memory held, per key type (tests check that nothing leaks). */
  readonly admission: Admission;
  /** The most client connections the proxy listener holds at once (null: no limit). */
  readonly maxConnections: number | null;
  /** Reads the connect keys' allowed origins (what preflights are answered for) now, not at the next interval. */
  refreshOrigins(): Promise<void>;
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

/**
 * The proxy listener's connection cap: the flag's value, or what the open-file limit
 * leaves beside the backend pool and Keygate's own descriptors.
 */
function maxConnectionsFor(config: ServeConfig, logger: Loggers['logger']): number | null {
  const fdLimit = openFileLimit();
  const room = proxyConnectionCap(fdLimit, config.upstreamOptions.connections);
  if (config.maxConnections !== 'auto') {
    if (room !== null && config.maxConnections > room) {
      logger.warn(
        { maxConnections: config.maxConnections, fdLimit, room },
        '--max-connections is above what the open-file limit leaves: a connection flood can starve the ops listener and the backend pool',
      );
    }
    return config.maxConnections;
  }
  if (room !== null && room < MIN_PROXY_CONNECTIONS) {
    throw new Error(
      `the open-file limit (${fdLimit}) leaves ${room} client connections beside --upstream-connections ${config.upstreamOptions.connections}: raise it (ulimit -n) or lower --upstream-connections`,
    );
  }
  return room;
}

/** How often the origins preflights are answered for are read again from the store (a new connect key's origins wait at most this long). */
const ORIGINS_REFRESH_MS = 5_000;

export interface StartOptions {
  /** false in a cluster worker (see RunningKeygate). */
  readonly opsListener: false;
}

/** Loads policies and the store, fails fast on either, then opens both listeners. */
export async function startKeygate(config: ServeConfig, loggers: Loggers): Promise<RunningKeygate>;
export async function startKeygate(config: ServeConfig, loggers: Loggers, options: StartOptions): Promise<RunningKeygate<null>>;
export async function startKeygate(config: ServeConfig, loggers: Loggers, options?: StartOptions): Promise<RunningKeygate<AddressInfo | null>> {
  const logger = loggers.logger;
  const maxConnections = maxConnectionsFor(config, logger);
  const policy = new PolicyHolder(loadPolicy(config.policies));
  for (const w of connectWarnings(policy.current.connect)) logger.warn({ version: policy.current.version }, w);
  const store = await openStore(config.store, { create: true });
  const metrics = new Metrics();
  metrics.policyInfo.labels(policy.current.version).set(1);
  const keys = new KeyCache(store, config.keyCache, metrics.keyCacheObserver());
  store.onFileChange?.((change) => logger[change.kind === 'reopened' ? 'warn' : 'error']({ store: store.kind, change: change.kind }, change.message));
  // Every change to a key, through the API or the Connect flow, is one JSON line (and an event in the store).
  const keyService = new KeyService(store, { onEvent: (line) => logger.info(line, 'key event') });
  const usage = new UsageRecorder(keys, store, (err) => logger.warn({ err: String(err) }, 'lastUsedAt could not be written'));
  usage.start();
  const expiries = new ExpiryWatch(
    store,
    (events) => {
      for (const e of events) logger.info({ event: e.event, keyId: e.keyId, actor: e.actor, at: e.at, changes: e.changes }, 'key event');
    },
    (err) => logger.warn({ err: String(err) }, 'key expiries could not be recorded'),
  );
  expiries.start();
  const upstream = createUpstream(config.upstream, config.upstreamOptions);
  const admission = new Admission(config.admission);
  const attributes = new BackendAttributes(upstream.compose(admitLookups(admission)), metrics.lookupObserver());
  const hops = trustedHops(config.trustProxy);
  const rateLimiting = await startRateLimiting(config.rateLimitStore, metrics, logger, hops);
  metrics.watch({
    droppedLogLines: () => loggers.droppedLines(),
    cacheSizes: () => ({ key_positive: keys.sizes.positive, key_negative: keys.sizes.negative, attributes: attributes.size, rate_limit_counters: rateLimiting.localSize() }),
  });

  const knownOrigins = new KnownOrigins(
    () => connectKeyOrigins(store),
    (err) => logger.error({ err: String(err) }, "could not read the connect keys' allowed origins (preflights keep the last set)"),
  );
  await knownOrigins.start(ORIGINS_REFRESH_MS);
  const browser = new BrowserGuard(
    knownOrigins,
    exposureReport({
      logger,
      registry: metrics.registry,
      // Through the key service (an audit event, and the store's notice to the other replicas); this replica forgets the key at once.
      revoke: !config.revokeExposedKeys
        ? null
        : async (principal, keyHeader) => {
            await keyService.revoke(principal.id, 'keygate');
            keys.evict(hashKey(keyHeader));
          },
    }),
  );
  const links = await openLinkStore(config.store);
  const connect = new ConnectRuntime({
    config,
    links,
    keys: keyService,
    policy,
    upstream: upstream.compose(admitLookups(admission)),
    logger,
    judge: (maker, judged, target) => checkNoEscalation({ policy: judged, principal: maker, cap: 'all' }, target),
  });

  const held = new HeldAnswers({ stallMs: config.upstreamBodyTimeoutMs, budgetBytes: config.heldAnswerBudgetBytes });
  const checked = new AnswerBudget(config.checkedAnswerBudgetBytes);
  const proxyServer = createServer(listenerOptions(config.deadlines));
  proxyServer.on('clientError', answerClientError);
  proxyServer.on('connect', connectRefusal(PROXY_METHODS));
  const connections = new ListenerConnections(proxyServer, config.deadlines.firstByteMs, maxConnections);
  proxyServer.on(
    'request',
    createProxyHandler({
      policy,
      keys,
      upstream,
      attributes,
      access: loggers.access,
      metrics,
      admission,
      listener: connections,
      maxBodyBytes: config.maxBodyBytes,
      maxUpstreamBodyBytes: config.maxUpstreamBodyBytes,
      held,
      checked,
      bodyTimeoutMs: config.bodyTimeoutMs,
      trustedHops: hops,
      rateLimiter: rateLimiting.limiter,
      browser,
      publicRoutes: connect.pages,
      served: servedRoutes({ keys: keyService, config, logger, connect }),
    }),
  );
  const local = localOps({ policy, store, metrics, isDraining: () => connections.draining });
  const opsServer = createServer(listenerOptions(config.deadlines), createOpsRouter(local));
  opsServer.on('clientError', answerClientError);
  opsServer.on('connect', connectRefusal('GET, HEAD'));
  // The first-byte deadline for the ops listener too (it has no cap: the proxy's leaves it descriptors).
  new ListenerConnections(opsServer, config.deadlines.firstByteMs);
  watchFlow(metrics, admission, proxyServer, connections, held, checked);
  const proxy = await listen(proxyServer, config.listen.host, config.listen.port);
  if (config.listen.port === 0) connect.boundAt(proxy.port);
  const ops = options?.opsListener === false ? null : await listen(opsServer, config.opsListen.host, config.opsListen.port);

  const settle = settleMemory(metrics, connections, logger);
  const reloader = new PolicyReloader(config.policies, policy, logger, metrics);
  const reload = (reason: string): void => reloader.request(reason);
  const watcher = config.watchPolicies ? watchPolicies(config.policies, () => reload('file changed')) : null;

  return {
    proxy,
    ops,
    local,
    keys,
    keyService,
    metrics,
    store,
    policy,
    admission,
    maxConnections,
    reload,
    refreshOrigins: () => knownOrigins.refresh(),
    async shutdown() {
      settle?.stop();
      watcher?.close();
      knownOrigins.close();
      await connect.close().catch(() => undefined);
      reloader.close();
      const started = performance.now();
      const drained = connections.drain().then(() => 'drained' as const);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), config.drainTimeoutMs);
      });
      if ((await Promise.race([drained, timedOut])) === 'timeout') {
        logger.warn({ drainTimeoutMs: config.drainTimeoutMs, connections: connections.size }, 'drain timeout: closing remaining connections');
        proxyServer.closeAllConnections();
        await drained;
      } else {
        logger.info({ drainMs: Math.round(performance.now() - started) }, 'drained');
      }
      clearTimeout(timer);
      admission.close();
      opsServer.closeAllConnections();
      await new Promise<void>((resolve) => opsServer.close(() => resolve()));
      await upstream.close().catch(() => undefined);
      // The uses since the last batch, and expiries in flight, are written before the store closes.
      await Promise.all([usage.stop(), expiries.stop()]);
      await Promise.all([store.close(), rateLimiting.counters.close().catch(() => undefined)]);
    },
  };
}

const MB = 2 ** 20;

/** Gives a burst's V8 heap back once traffic stops (MemorySettle); off when Node runs without --expose-gc. */
function settleMemory(metrics: Metrics, connections: ListenerConnections, logger: Loggers['logger']): MemorySettle | null {
  const gc = exposedGc();
  if (gc === undefined) {
    logger.debug('node runs without --expose-gc: the heap a burst grew is kept until V8 collects it');
    return null;
  }
  const settle = new MemorySettle({
    finished: () => metrics.finished,
    inFlight: () => metrics.inFlight,
    peakConnections: () => connections.takePeak(),
    gc,
    onSettle: (f) => logger.info({ heapBeforeMb: Math.round(f.heapBeforeBytes / MB), heapAfterMb: Math.round(f.heapAfterBytes / MB), ms: Math.round(f.ms) }, 'memory returned after a burst'),
  });
  settle.start();
  return settle;
}

/** Admission and connection figures, read when /metrics is scraped. */
function watchFlow(metrics: Metrics, admission: Admission, server: Server, connections: ListenerConnections, held: HeldAnswers, checked: AnswerBudget): void {
  const registers = [metrics.registry];
  new Gauge({
    name: 'keygate_checked_answer_bytes',
    help: 'Bytes of checked answers held from their first byte from the backend until their client has them (bounded by --checked-answer-budget)',
    registers,
    collect() {
      this.set(checked.bytes);
    },
  });
  let uploadsCut = 0;
  new Counter({
    name: 'keygate_uploads_cut_total',
    help: "Request bodies cut while arriving to make room for a party holding less of its key type's body memory (the client got 503 UPLOADS_SATURATED)",
    registers,
    collect() {
      this.inc(admission.uploadsCut - uploadsCut);
      uploadsCut = admission.uploadsCut;
    },
  });
  let checkedCuts = 0;
  new Counter({
    name: 'keygate_checked_answers_cut_total',
    help: 'Checked answers aborted while arriving from the backend to keep them within --checked-answer-budget (the client got 503 ANSWERS_SATURATED)',
    registers,
    collect() {
      this.inc(checked.cuts - checkedCuts);
      checkedCuts = checked.cuts;
    },
  });
  new Gauge({
    name: 'keygate_held_answer_bytes',
    help: 'Bytes of checked answers written whole that clients have not taken yet (bounded by --held-answer-budget)',
    registers,
    collect() {
      this.set(held.bytes);
    },
  });
  const reported: Record<CutReason, number> = { stalled: 0, budget: 0 };
  new Counter({
    name: 'keygate_client_connections_cut_total',
    help: 'Client connections closed under a checked answer they did not take: stalled (took nothing for --upstream-body-timeout) or budget (past --held-answer-budget)',
    labelNames: ['reason'],
    registers,
    collect() {
      for (const reason of ['stalled', 'budget'] as const) {
        const now = held.cuts[reason];
        this.labels(reason).inc(now - reported[reason]);
        reported[reason] = now;
      }
    },
  });
  new Gauge({
    name: 'keygate_upstream_connections_in_use',
    help: 'Backend connections held, by admission class (key type, or lookup)',
    labelNames: ['class'],
    registers,
    collect() {
      const s = admission.snapshot();
      for (const c of ADMISSION_CLASSES) this.labels(c).set(s[c].active);
    },
  });
  new Gauge({
    name: 'keygate_upstream_queued',
    help: 'Requests waiting for a backend connection, by admission class',
    labelNames: ['class'],
    registers,
    collect() {
      const s = admission.snapshot();
      for (const c of ADMISSION_CLASSES) this.labels(c).set(s[c].queued);
    },
  });
  new Gauge({
    name: 'keygate_client_connections',
    help: 'Client connections open on the proxy listener',
    registers,
    collect() {
      this.set(connections.size);
    },
  });
  let evicted = 0;
  const dropped = new Counter({
    name: 'keygate_client_connections_dropped_total',
    help: "Client connections closed because the proxy listener was at --max-connections: the oldest one that had not sent its first request's headers (to let a newcomer in), or the newcomer",
    registers,
    collect() {
      this.inc(connections.evicted - evicted);
      evicted = connections.evicted;
    },
  });
  server.on('drop', () => dropped.inc());
}
