import cluster, { type Worker } from 'node:cluster';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import type { ServeConfig } from '../config/serve-config.ts';
import type { Loggers } from '../observability/logger.ts';
import { loadPolicy } from '../policy/load.ts';
import { createServer } from '../util/node-http.ts';
import { ask, isWorkerMessage } from './cluster-messages.ts';
import { createOpsRouter } from './ops-handler.ts';
import { exitAfterFlush, LAST_FLUSH_MS } from './process.ts';
import type { ReadinessReport } from './readiness.ts';

/** A worker that died is replaced after this delay, doubled for each crash in the window, up to the maximum. */
const RESTART_BACKOFF_MIN_MS = 100;
const RESTART_BACKOFF_MAX_MS = 5_000;
/**
 * "Keep crashing": this many crashes per worker within CRASH_WINDOW_MS (at least
 * MIN_CRASH_LIMIT in all). Then replacing them is not helping (a bad deployment, a store
 * that fails every start): the primary stops the others and exits 1, so the orchestrator
 * sees a failed process instead of one that serves at a fraction of its capacity.
 */
const CRASHES_PER_WORKER = 3;
const MIN_CRASH_LIMIT = 5;
const CRASH_WINDOW_MS = 60_000;
/** How long the primary waits for a worker's answer (readiness within a probe's usual 1 s timeout). */
const READINESS_TIMEOUT_MS = 800;
const METRICS_TIMEOUT_MS = 2_000;

interface Slot {
  readonly index: number;
  worker: Worker | null;
  listening: boolean;
  proxy: string | null;
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
 * The primary of `keygate serve --workers N`: forks N workers sharing the proxy listener
 * (node:cluster), replaces a worker that dies (with backoff), exits 1 when they keep
 * crashing, and serves the ops listener for the whole group — /healthz (the primary
 * lives), /readyz (ready only when every worker is up and answers ready), /metrics (every
 * worker's registry aggregated with prom-client's AggregatorRegistry, plus the
 * supervisor's own figures). It opens no store and no proxy socket of its own.
 */
export async function runPrimary(config: ServeConfig, loggers: Loggers): Promise<void> {
  const logger = loggers.logger;
  const workers = config.workers;
  const crashLimit = Math.max(MIN_CRASH_LIMIT, CRASHES_PER_WORKER * workers);
  // A policy that does not load stops start-up here, once, with file:line:col (exit 1),
  // rather than in N workers that would each fail the same way.
  const policyVersion = loadPolicy(config.policies).version;

  const slots: Slot[] = Array.from({ length: workers }, (_, index) => ({ index, worker: null, listening: false, proxy: null }));
  const restartTimers = new Set<NodeJS.Timeout>();
  let crashes: number[] = [];
  let started = false;
  let stopping = false;
  let exitCode = 0;
  let restartCount = 0;

  const registry = new Registry();
  const restarts = new Counter({ name: 'keygate_worker_restarts_total', help: 'Workers started to replace one that exited unexpectedly', registers: [registry] });
  new Gauge({
    name: 'keygate_workers',
    help: 'Worker processes: expected (--workers) and running (listening)',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.labels('expected').set(workers);
      this.labels('running').set(slots.filter((s) => s.worker !== null && s.listening).length);
    },
  });

  const readiness = async (): Promise<ReadinessReport> => {
    const answers = await Promise.all(
      slots.map(async (s) => {
        const worker = s.worker;
        if (worker === null || !s.listening) return { pid: worker?.process.pid ?? null, report: null };
        return { pid: worker.process.pid ?? null, report: (await ask(worker, 'keygate:readiness', READINESS_TIMEOUT_MS))?.report ?? null };
      }),
    );
    const list = answers.map(({ pid, report }, i) => ({
      slot: i,
      pid,
      ready: report?.ready === true,
      status: report === null ? (pid === null ? 'restarting' : slots[i]!.listening ? 'not answering' : 'starting') : String(report.body.status),
      ...(report !== null && !report.ready ? { store: report.body.store, draining: report.body.draining } : {}),
    }));
    const ready = !stopping && list.every((w) => w.ready);
    const bodies = answers.flatMap((a) => (a.report === null ? [] : [a.report.body]));
    const stores = bodies.map((b) => b.store as { ok?: boolean } | undefined);
    return {
      ready,
      body: {
        status: ready ? 'ready' : 'not ready',
        draining: stopping,
        workers: { expected: workers, ready: list.filter((w) => w.ready).length, restarts: restartCount, list },
        policy: bodies[0]?.policy ?? null,
        store: stores.find((s) => s?.ok === false) ?? stores[0] ?? null,
      },
    };
  };

  const metrics = async (): Promise<{ contentType: string; text: string }> => {
    const live = slots.flatMap((s) => (s.worker !== null && s.listening ? [s.worker] : []));
    const answers = await Promise.all(live.map((w) => ask(w, 'keygate:metrics', METRICS_TIMEOUT_MS)));
    const perWorker = answers.flatMap((a) => (a?.metrics == null ? [] : [a.metrics]));
    const aggregated = AggregatorRegistry.aggregate([...perWorker, await registry.getMetricsAsJSON()]);
    return { contentType: registry.contentType, text: await aggregated.metrics() };
  };

  const opsServer = createServer(createOpsRouter({ readiness, metrics }));
  const ops = await listen(opsServer, config.opsListen.host, config.opsListen.port);

  const fork = (slot: Slot): void => {
    const worker = cluster.fork();
    slot.worker = worker;
    slot.listening = false;
    worker.on('error', () => undefined); // an IPC send to a worker that just died; its exit is handled below
    worker.on('message', (message: unknown) => {
      if (!isWorkerMessage(message) || message.type !== 'keygate:listening') return;
      slot.listening = true;
      slot.proxy = message.proxy;
      if (started || !slots.every((s) => s.listening)) return;
      started = true;
      logger.info({ proxy: slot.proxy, ops: `${ops.address}:${ops.port}`, upstream: config.upstream, policy: policyVersion, workers, pid: process.pid }, 'keygate listening');
      logger.flush();
    });
  };

  const finish = (): void => {
    opsServer.closeAllConnections();
    opsServer.close();
    logger.info({ code: exitCode }, 'stopped');
    exitAfterFlush(loggers, exitCode);
  };

  const stopAll = (code: number): void => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    for (const t of restartTimers) clearTimeout(t);
    restartTimers.clear();
    const alive = slots.flatMap((s) => (s.worker === null ? [] : [s.worker]));
    if (alive.length === 0) {
      finish();
      return;
    }
    for (const w of alive) w.process.kill('SIGTERM');
    // Workers drain for at most --drain-timeout and flush for at most LAST_FLUSH_MS.
    setTimeout(
      () => {
        for (const s of slots) {
          if (s.worker === null) continue;
          logger.error({ pid: s.worker.process.pid }, 'worker did not stop in time: killed');
          s.worker.process.kill('SIGKILL');
        }
      },
      config.drainTimeoutMs + LAST_FLUSH_MS + 2_000,
    ).unref();
  };

  cluster.on('exit', (worker, code, signal) => {
    const slot = slots.find((s) => s.worker === worker);
    if (slot === undefined) return;
    slot.worker = null;
    slot.listening = false;
    if (stopping) {
      // Our SIGTERM can reach a worker still starting, before it handles the signal.
      if (code !== 0 && signal !== 'SIGTERM') exitCode = 1;
      if (slots.every((s) => s.worker === null)) finish();
      return;
    }
    logger.error({ pid: worker.process.pid, code, signal }, 'worker exited');
    if (!started) {
      // As a single process would: a worker that cannot start (port taken, store unusable)
      // is a start-up failure, not a crash to retry.
      logger.error('a worker failed to start; stopping');
      stopAll(1);
      return;
    }
    const now = Date.now();
    crashes = crashes.filter((t) => now - t < CRASH_WINDOW_MS);
    crashes.push(now);
    if (crashes.length >= crashLimit) {
      logger.error({ crashes: crashes.length, windowMs: CRASH_WINDOW_MS }, 'workers keep crashing; stopping');
      stopAll(1);
      return;
    }
    const delay = Math.min(RESTART_BACKOFF_MIN_MS * 2 ** (crashes.length - 1), RESTART_BACKOFF_MAX_MS);
    const timer = setTimeout(() => {
      restartTimers.delete(timer);
      if (stopping) return;
      restartCount++;
      restarts.inc();
      fork(slot);
      logger.warn({ slot: slot.index, pid: slot.worker?.process.pid, afterMs: delay, crashesInWindow: crashes.length }, 'worker replaced');
    }, delay);
    restartTimers.add(timer);
  });

  logger.info({ workers }, 'starting workers');
  for (const slot of slots) fork(slot);
  process.on('SIGHUP', () => {
    for (const s of slots) s.worker?.process.kill('SIGHUP');
  });
  process.on('SIGTERM', () => stopAll(0));
  process.on('SIGINT', () => stopAll(0));
}
