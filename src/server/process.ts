import cluster from 'node:cluster';
import type { ServeConfig } from '../config/serve-config.ts';
import type { Loggers } from '../observability/logger.ts';
import { isPrimaryMessage, type WorkerMessage } from './cluster-messages.ts';
import { type RunningKeygate, startKeygate } from './serve.ts';

/**
 * The last flush waits at most this long for stdout: a log reader that stopped reading
 * (a stuck log shipper) must not keep a stopping process alive until the orchestrator's
 * SIGKILL. Lines still unwritten then are lost.
 */
export const LAST_FLUSH_MS = 1_000;

export function exitAfterFlush(loggers: Loggers, code: number): void {
  void loggers.flushWithin(LAST_FLUSH_MS).then(() => process.exit(code));
}

/** A worker answers its primary's questions (readiness, metrics) about this process. */
function answerPrimary(running: RunningKeygate<null>): void {
  const reply = (message: WorkerMessage): void => {
    if (process.connected) process.send!(message, undefined, undefined, () => undefined);
  };
  process.on('message', (message: unknown) => {
    if (!isPrimaryMessage(message)) return;
    const { type, id } = message;
    if (type === 'keygate:readiness') {
      void running.local.readiness().then((report) => reply({ type, id, report }));
    } else if (type === 'keygate:metrics') {
      running.metrics.registry.getMetricsAsJSON().then(
        (metrics) => reply({ type, id, metrics }),
        () => reply({ type, id, metrics: null }),
      );
    }
  });
}

/**
 * `keygate serve` as one process, or as one worker of `--workers N` (then without the ops
 * listener, which the primary serves for the group: see supervisor.ts). Logs the listening
 * line, reloads on SIGHUP, and on SIGTERM/SIGINT drains and exits 0 (1 if shutdown fails).
 */
export async function runProcess(config: ServeConfig, loggers: Loggers): Promise<void> {
  const logger = loggers.logger;
  let running: RunningKeygate<null> | RunningKeygate;
  if (cluster.isWorker) {
    const worker = await startKeygate(config, loggers, { opsListener: false });
    answerPrimary(worker);
    const proxy = `${worker.proxy.address}:${worker.proxy.port}`;
    logger.info({ proxy, worker: cluster.worker?.id, policy: worker.policy.current.version, pid: process.pid }, 'worker listening');
    const listening: WorkerMessage = { type: 'keygate:listening', proxy };
    process.send!(listening);
    running = worker;
  } else {
    const single = await startKeygate(config, loggers);
    logger.info(
      {
        proxy: `${single.proxy.address}:${single.proxy.port}`,
        ops: `${single.ops.address}:${single.ops.port}`,
        upstream: config.upstream,
        store: single.store.kind,
        policy: single.policy.current.version,
        pid: process.pid,
      },
      'keygate listening',
    );
    running = single;
  }
  // Whoever waits for this line (an orchestrator, the tests, the bench) gets it now, not after 250 ms.
  logger.flush();
  process.on('SIGHUP', () => running.reload('SIGHUP'));
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining');
    running.shutdown().then(
      () => {
        logger.info('stopped');
        exitAfterFlush(loggers, 0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        exitAfterFlush(loggers, 1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
