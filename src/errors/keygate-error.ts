import { ERRORS, type ErrorCode } from './catalogue.ts';

/**
 * Every pipeline stage throws this; only src/errors/render.ts turns it into a response.
 * `detail` goes to the access log, never to the client, so a refusal can say why
 * without telling an attacker which check failed first.
 */
export class KeygateError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: string | undefined;
  readonly headers: Record<string, string> | undefined;
  /** The request field or parameter at fault (Keygate's own endpoints), sent as `error.field`. */
  readonly field: string | undefined;

  constructor(code: ErrorCode, options?: { message?: string; detail?: string; headers?: Record<string, string>; cause?: unknown; status?: number; field?: string }) {
    // Refusals are expected outcomes, thrown on the hot path (a 401/403 flood): capturing a
    // stack trace for each was the largest single cost of a rejection. Causes keep theirs.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(options?.message ?? ERRORS[code].message, options?.cause === undefined ? undefined : { cause: options.cause });
    Error.stackTraceLimit = limit;
    this.name = 'KeygateError';
    this.code = code;
    this.status = options?.status ?? ERRORS[code].status;
    this.detail = options?.detail;
    this.headers = options?.headers;
    this.field = options?.field;
  }
}

/**
 * A refusal that carries nothing of the request (no stack either), built once and shared
 * — frozen — by every request that earns it: a 401/403 flood constructs no errors.
 */
export function sharedRefusal(code: ErrorCode, detail?: string): KeygateError {
  return Object.freeze(new KeygateError(code, detail === undefined ? undefined : { detail }));
}
