import cluster from 'node:cluster';
import type { Logger } from 'pino';
import { SERVE } from '../config/commands.ts';
import { serveConfig } from '../config/serve-config.ts';
import { createLoggers } from '../observability/logger.ts';
import { startKeygate } from '../server/serve.ts';
import { parseOrHelp } from './parse-command.ts';

function flushAndExit(logger: Logger, code: number): void {
  logger.flush(() => process.exit(code));
}

/** `keygate serve`: one process, or `--workers N` processes sharing the listeners (node:cluster). */
export async function serveCommand(argv: readonly string[]): Promise<void> {
  const parsed = parseOrHelp(SERVE, argv);
  if (parsed === undefined) return;
  const config = serveConfig(parsed.values);
  const loggers = createLoggers({ level: config.logLevel, accessLog: config.accessLog, bufferBytes: config.logBufferBytes });
  const logger = loggers.logger;

  if (config.workers > 1 && cluster.isPrimary) {
    logger.info({ workers: config.workers }, 'starting workers');
    let alive = config.workers;
    for (let i = 0; i < config.workers; i++) cluster.fork();
    cluster.on('exit', (worker, code) => {
      alive--;
      if (code !== 0) logger.error({ pid: worker.process.pid, code }, 'worker exited');
      if (alive === 0) flushAndExit(logger, 0);
    });
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.on(signal, () => {
        for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
      });
    }
    return;
  }

  const running = await startKeygate(config, loggers);
  logger.info(
    {
      proxy: `${running.proxy.address}:${running.proxy.port}`,
      ops: `${running.ops.address}:${running.ops.port}`,
      upstream: config.upstream,
      store: running.store.kind,
      policy: running.policy.current.version,
      pid: process.pid,
    },
    'keygate listening',
  );
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
        flushAndExit(logger, 0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        flushAndExit(logger, 1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
