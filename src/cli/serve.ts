import cluster from 'node:cluster';
import { serveConfig, SERVE_OPTIONS } from '../config.ts';
import { createLoggers } from '../observability/logger.ts';
import { runProcess } from '../server/process.ts';
import { runPrimary } from '../server/supervisor.ts';
import { only, parseArgs } from './args.ts';

/** `keygate serve`: one process, or `--workers N` processes sharing the listeners (node:cluster). */
export async function serveCommand(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv);
  only(args, Object.keys(SERVE_OPTIONS));
  const config = serveConfig(args);
  const loggers = createLoggers();
  if (config.workers > 1 && cluster.isPrimary) return runPrimary(config, loggers);
  return runProcess(config, loggers);
}
