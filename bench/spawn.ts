import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';

export interface ServerProcess {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** JSON lines seen before the server was ready (the ready line(s) included). */
  readonly readyLines: ReadonlyArray<Record<string, unknown>>;
  /** From spawn to ready (the last ready line, or the port accepting): the start-up time. */
  readonly readyMs: number;
  readonly stderrTail: () => string;
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** True for each stdout JSON line that means "listening"; ready after `readyCount` of them. */
  readonly isReady?: (line: Record<string, unknown>) => boolean;
  readonly readyCount?: number;
  /** For servers that print nothing (nginx): ready once this TCP port accepts. */
  readonly readyPort?: number;
  readonly timeoutMs?: number;
}

const STDERR_TAIL = 8192;
const live = new Set<ServerProcess>();

/** Everything still running, so run.ts can clean up on failure or Ctrl-C. */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((s) => s.stop()));
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Starts one server process and waits until it listens. Afterwards its stdout keeps being
 * read and thrown away: Keygate writes an access line per request, and a full pipe would
 * block it (and reading costs the bench process far less than writing to a file would
 * cost a shared disk).
 */
export function spawnServer(command: string, args: readonly string[], options: SpawnOptions): Promise<ServerProcess> {
  const spawnedAt = performance.now();
  const proc = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let pending = '';
  let ready = false;
  let seen = 0;
  const readyLines: Array<Record<string, unknown>> = [];
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.stderr!.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-STDERR_TAIL);
  });
  const server: ServerProcess = {
    proc,
    pid: proc.pid ?? -1,
    readyLines,
    readyMs: NaN,
    stderrTail: () => stderr,
    async stop(graceMs = 5000) {
      live.delete(server);
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  live.add(server);

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void server.stop(0);
      reject(new Error(`${command} ${args.join(' ')}: not ready after ${options.timeoutMs ?? 20_000} ms\n${stderr}`));
    }, options.timeoutMs ?? 20_000);
    const done = (): void => {
      ready = true;
      (server as { readyMs: number }).readyMs = performance.now() - spawnedAt;
      clearTimeout(timer);
      resolve(server);
    };
    void exited.then(() => {
      if (!ready) {
        clearTimeout(timer);
        live.delete(server);
        reject(new Error(`${command} ${args.join(' ')} exited with ${proc.exitCode ?? proc.signalCode} before it was ready\n${stderr}`));
      }
    });
    proc.stdout!.on('data', (chunk: Buffer) => {
      if (ready || options.isReady === undefined) return; // discard: see above
      pending += chunk.toString();
      let nl: number;
      while ((nl = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        if (options.isReady(parsed)) {
          readyLines.push(parsed);
          if (++seen >= (options.readyCount ?? 1)) {
            pending = '';
            return done();
          }
        }
      }
    });
    if (options.readyPort !== undefined) {
      const port = options.readyPort;
      const poll = async (): Promise<void> => {
        while (!ready && proc.exitCode === null) {
          if (await portOpen(port)) return done();
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      void poll();
    }
  });
}
