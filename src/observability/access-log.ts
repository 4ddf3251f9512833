import type { DestinationStream } from 'pino';

/** The fields of one access line; see the README's "Logs and metrics". */
export interface AccessRecord {
  readonly requestId: string;
  readonly method: string | undefined;
  readonly path: string | undefined;
  readonly route: string;
  readonly keyId: string | undefined;
  readonly keyType: string | undefined;
  readonly decision: string;
  readonly status: number;
  readonly code: string | undefined;
  readonly detail: string | undefined;
  readonly latencyMs: number;
}

const json = JSON.stringify;

/**
 * One access line per request, in pino's line format (`level`, `time`, `service`, …,
 * `msg`) on pino's destination, but written by hand. The fields are fixed and never hold
 * a header, so the generic serializer (and redaction) buys nothing here, and it cost
 * about 10 µs per request in the bench: a fifth of the proxy's CPU per request.
 * Strings go through JSON.stringify (escaping); absent fields are left out, as pino does.
 */
export class AccessLog {
  readonly #destination: DestinationStream;
  readonly enabled: boolean;

  constructor(destination: DestinationStream, enabled: boolean) {
    this.#destination = destination;
    this.enabled = enabled;
  }

  write(r: AccessRecord): void {
    if (!this.enabled) return;
    let line = `{"level":30,"time":${Date.now()},"service":"keygate","requestId":${json(r.requestId)}`;
    if (r.method !== undefined) line += `,"method":${json(r.method)}`;
    if (r.path !== undefined) line += `,"path":${json(r.path)}`;
    line += `,"route":${json(r.route)}`;
    if (r.keyId !== undefined) line += `,"keyId":${json(r.keyId)}`;
    if (r.keyType !== undefined) line += `,"keyType":${json(r.keyType)}`;
    line += `,"decision":${json(r.decision)},"status":${r.status}`;
    if (r.code !== undefined) line += `,"code":${json(r.code)}`;
    if (r.detail !== undefined) line += `,"detail":${json(r.detail)}`;
    this.#destination.write(`${line},"latencyMs":${r.latencyMs},"msg":"access"}\n`);
  }
}
