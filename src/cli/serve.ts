import cluster from 'node:cluster';
import { SERVE } from '../config/commands.ts';
import { serveConfig } from '../config/serve-config.ts';
import { createLoggers } from '../observability/logger.ts';
import { runProcess } from '../server/process.ts';
import { runPrimary } from '../server/supervisor.ts';
import { parseOrHelp } from './parse-command.ts';

/** `keygate serve`: one process, or `--workers N` processes sharing the listeners (node:cluster). */
export async function serveCommand(argv: readonly string[]): Promise<void> {
  const parsed = parseOrHelp(SERVE, argv);
  if (parsed === undefined) return;
  const config = serveConfig(parsed.values);
  const loggers = createLoggers({ level: config.logLevel, accessLog: config.accessLog, bufferBytes: config.logBufferBytes });
  if (config.workers > 1 && cluster.isPrimary) return runPrimary(config, loggers);
  return runProcess(config, loggers);
}
