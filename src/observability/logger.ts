import pino, { type DestinationStream, type Logger } from 'pino';
import { AccessLog } from './access-log.ts';
import { LogDestination, makeStdoutNonBlocking } from './log-destination.ts';

/**
 * Paths that may hold a key, censored wherever they appear in an operational log line.
 * The access log never reads the key header in the first place (invariant 6).
 */
const REDACT_PATHS = ['key', 'secret', 'headers["texture-api-key"]', 'req.headers["texture-api-key"]', '*.headers["texture-api-key"]', '*["texture-api-key"]'];

export interface Loggers {
  /** Start-up, reload, shutdown and error lines, with redaction. */
  readonly logger: Logger;
  /** One line per request, on the same destination (see access-log.ts for why not pino). */
  readonly access: AccessLog;
  /** Lines dropped by a stdout reader that fell too far behind (see LogDestination). */
  droppedLines(): number;
  /** Writes what is buffered, waiting at most `ms`; true when it was all written. */
  flushWithin(ms: number): Promise<boolean>;
}

export interface LoggerOptions {
  /** pino's level for the operational lines (serve's --log-level); the access log has its own switch. */
  level?: string;
  /** One access line per request (serve's --access-log). */
  accessLog?: boolean;
  /** Bytes buffered before a write to stdout (serve's --log-buffer); 0 writes each line at once. */
  bufferBytes?: number;
  /** Tests pass a stream; serve writes to stdout through an async buffered destination. */
  destination?: DestinationStream;
}

export function createLoggers(options: LoggerOptions = {}): Loggers {
  // Buffered, asynchronous stdout: a log line must not cost a write syscall per request.
  // A timer flushes at least every 250 ms so lines are never held long; a buffer of 0 writes through.
  let destination = options.destination;
  let own: LogDestination | undefined;
  if (destination === undefined) {
    makeStdoutNonBlocking();
    own = new LogDestination(1, options.bufferBytes ?? 65536);
    const d = own;
    setInterval(() => d.flush(), 250).unref();
    process.once('exit', () => d.flushSync());
    destination = own;
  }
  const logger = pino({ level: options.level ?? 'info', base: { service: 'keygate' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, destination);
  const flushWithin = (ms: number): Promise<boolean> => own?.flushWithin(ms) ?? new Promise((resolve) => logger.flush((err) => resolve(err === undefined || err === null)));
  return { logger, access: new AccessLog(destination, options.accessLog ?? true), droppedLines: () => own?.dropped ?? 0, flushWithin };
}
