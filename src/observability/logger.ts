import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * Paths that may hold a key, censored wherever they appear in an operational log line.
 * The access log never reads the key header in the first place (invariant 6).
 */
export const REDACT_PATHS = [
  'key',
  'secret',
  'headers["texture-api-key"]',
  'req.headers["texture-api-key"]',
  '*.headers["texture-api-key"]',
  '*["texture-api-key"]',
];

export interface Loggers {
  /** Start-up, reload, shutdown and error lines, with redaction. */
  readonly logger: Logger;
  /**
   * One line per request. Its fields are fixed by src/server/proxy-handler.ts and never
   * include a header, so it skips redaction: redacting every access line cost more than
   * building it.
   */
  readonly access: Logger;
}

export interface LoggerOptions {
  level?: string;
  /** Tests pass a stream; serve writes to stdout through an async buffered destination. */
  destination?: DestinationStream;
}

export function createLoggers(options: LoggerOptions = {}): Loggers {
  // Buffered, asynchronous stdout: a log line must not cost a write syscall per request.
  // A timer flushes at least every 250 ms so lines are never held long; KEYGATE_LOG_BUFFER=0 writes through.
  const minLength = Number(process.env.KEYGATE_LOG_BUFFER ?? 4096);
  const destination = options.destination ?? pino.destination({ dest: 1, sync: false, minLength });
  if (options.destination === undefined && minLength > 0) {
    setInterval(() => (destination as unknown as { flush(): void }).flush(), 250).unref();
  }
  const level = options.level ?? process.env.KEYGATE_LOG_LEVEL ?? 'info';
  const base = { service: 'keygate' };
  return {
    logger: pino({ level, base, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, destination),
    access: pino({ level, base }, destination),
  };
}
