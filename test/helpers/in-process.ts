import type { AddressInfo } from 'node:net';
import { parseCommand } from '../../src/cli/parse-command.ts';
import { SERVE } from '../../src/config/commands.ts';
import { serveConfig } from '../../src/config/serve-config.ts';
import { type DemoBackend, startDemoBackend } from '../../src/demo/backend.ts';
import { hashKey } from '../../src/keys/key-format.ts';
import { mintKey } from '../../src/keys/mint-key.ts';
import { createLoggers } from '../../src/observability/logger.ts';
import { ADMISSION_CLASSES } from '../../src/pipeline/admission.ts';
import { type RunningKeygate, startKeygate } from '../../src/server/serve.ts';
import { POLICIES, type TestKeys } from './sidecar.ts';

/**
 * Keygate in this process, wired exactly as `keygate serve` wires it (startKeygate, from
 * the same options table), on port 0: the proxy handler with a real SQLite store in
 * memory, a real backend (the demo backend unless `upstream` is given) and its log lines
 * captured through pino's destination. Tests reach the handler over real HTTP and can
 * read what it holds (admission, in-flight count) without a child process.
 */
export interface InProcessKeygate {
  readonly url: string;
  readonly opsUrl: string;
  readonly running: RunningKeygate;
  /** The demo backend, or null when the test brought its own upstream. */
  readonly backend: DemoBackend | null;
  readonly keys: TestKeys;
  /** Every log line written so far, parsed. */
  readonly logs: Array<Record<string, unknown>>;
  /** The access lines so far. */
  access(): Array<Record<string, unknown>>;
  /** What the handler holds now: requests in flight, backend connections and body bytes per class, queued requests. */
  held(): { inFlight: number; active: number; queued: number; bodyBytes: number };
  /** Waits until nothing is held (every request finished and released its share), or fails after `ms`. */
  settled(ms?: number): Promise<void>;
  close(): Promise<void>;
}

const SEEDED = [
  ['server', 'server', undefined],
  ['connect', 'connect', undefined],
  ['alice', 'scoped', 'alice'],
  ['bob', 'scoped', 'bob'],
] as const;

export async function startInProcess(opts: { upstream?: string; args?: readonly string[]; policies?: string } = {}): Promise<InProcessKeygate> {
  const backend = opts.upstream === undefined ? await startDemoBackend() : null;
  const args = [...(opts.args ?? [])];
  if (!args.includes('--watch-policies')) args.push('--watch-policies', 'false');
  const argv = ['--upstream', opts.upstream ?? backend!.url, '--store', 'sqlite::memory:', '--listen', '127.0.0.1:0', '--ops-listen', '127.0.0.1:0', '--policies', opts.policies ?? POLICIES, ...args];
  // No environment: a KEYGATE_* variable of the shell running the tests changes nothing here.
  const parsed = parseCommand(SERVE, argv, {});
  if (parsed.help) throw new Error('unexpected --help');
  const config = serveConfig(parsed.values);
  const logs: Array<Record<string, unknown>> = [];
  const destination = {
    write(chunk: string): void {
      for (const line of chunk.split('\n')) if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
    },
  };
  const loggers = createLoggers({ level: config.logLevel, accessLog: config.accessLog, destination });
  const running = await startKeygate(config, loggers);
  const keys = { ids: {} } as TestKeys;
  for (const [label, type, referenceId] of SEEDED) {
    const { record, key } = mintKey({ type, referenceId, name: label });
    await running.store.insert(record, hashKey(key));
    keys[label] = key;
    keys.ids[label] = record.id;
  }
  const held = (): { inFlight: number; active: number; queued: number; bodyBytes: number } => {
    const s = running.admission.snapshot();
    let active = 0;
    let queued = 0;
    let bodyBytes = 0;
    for (const c of ADMISSION_CLASSES) {
      active += s[c].active;
      queued += s[c].queued;
      bodyBytes += s[c].bodyBytes;
    }
    return { inFlight: running.metrics.inFlight, active, queued, bodyBytes };
  };
  const address = (a: AddressInfo): string => `http://127.0.0.1:${a.port}`;
  return {
    url: address(running.proxy),
    opsUrl: address(running.ops),
    running,
    backend,
    keys,
    logs,
    access: () => logs.filter((l) => l.msg === 'access'),
    held,
    async settled(ms = 10_000) {
      const t0 = Date.now();
      for (;;) {
        const h = held();
        if (h.inFlight === 0 && h.active === 0 && h.queued === 0 && h.bodyBytes === 0) return;
        if (Date.now() - t0 > ms) throw new Error(`still held after ${ms} ms: ${JSON.stringify(h)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async close() {
      await running.shutdown();
      await backend?.close();
    },
  };
}
