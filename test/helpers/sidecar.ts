import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { hashKey } from '../../src/keys/key-format.ts';
import { mintKey } from '../../src/keys/mint-key.ts';
import { SqliteKeyStore } from '../../src/keys/sqlite-store.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin/keygate.js');
export const POLICIES = join(ROOT, 'policies');

export interface Sidecar {
  readonly url: string;
  readonly opsUrl: string;
  readonly proc: ChildProcess;
  /** Every stdout line, parsed when JSON. */
  readonly logs: Array<Record<string, unknown>>;
  readonly stdout: () => string;
  readonly stderr: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function tempDir(prefix = 'keygate-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function tempStore(): string {
  return 'sqlite:' + join(tempDir(), 'keys.db');
}

/** Runs `keygate serve` exactly as the Docker image does (bin/keygate.js), on port 0. */
export async function startSidecar(opts: { upstream: string; store: string; policies?: string; args?: string[]; env?: Record<string, string> }): Promise<Sidecar> {
  const proc = spawn(
    process.execPath,
    [BIN, 'serve', '--upstream', opts.upstream, '--listen', '127.0.0.1:0', '--ops-listen', '127.0.0.1:0', '--store', opts.store, '--policies', opts.policies ?? POLICIES, ...(opts.args ?? [])],
    { cwd: ROOT, env: { ...process.env, KEYGATE_LOG_BUFFER: '0', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  let parsed = 0;
  const logs: Array<Record<string, unknown>> = [];
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
  const ready = new Promise<{ proxy: string; ops: string }>((res, rej) => {
    proc.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      let nl: number;
      while ((nl = out.indexOf('\n', parsed)) !== -1) {
        const line = out.slice(parsed, nl);
        parsed = nl + 1;
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (entry.msg === 'keygate listening') res({ proxy: entry.proxy as string, ops: entry.ops as string });
        } catch {
          /* not JSON */
        }
      }
    });
    proc.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
    void exited.then((code) => rej(new Error(`keygate exited with ${code} before listening:\n${err}\n${out}`)));
  });
  const addr = await ready;
  return {
    url: `http://${addr.proxy}`,
    opsUrl: `http://${addr.ops}`,
    proc,
    logs,
    stdout: () => out,
    stderr: () => err,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill(signal);
      return exited;
    },
  };
}

export interface TestKeys {
  server: string;
  connect: string;
  alice: string;
  bob: string;
  ids: Record<'server' | 'connect' | 'alice' | 'bob', string>;
}

/** Seeds the four keys of the Texture table into a real SQLite file. */
export async function seedKeys(store: string): Promise<TestKeys> {
  const s = new SqliteKeyStore(store.slice('sqlite:'.length));
  const out = { ids: {} } as TestKeys;
  for (const [label, type, referenceId] of [
    ['server', 'server', undefined],
    ['connect', 'connect', undefined],
    ['alice', 'scoped', 'alice'],
    ['bob', 'scoped', 'bob'],
  ] as const) {
    const { record, key } = mintKey({ type, referenceId, name: label });
    await s.insert(record, hashKey(key));
    out[label] = key;
    out.ids[label] = record.id;
  }
  await s.close();
  return out as TestKeys;
}

export async function addKey(store: string, input: Parameters<typeof mintKey>[0]): Promise<{ id: string; key: string }> {
  const s = new SqliteKeyStore(store.slice('sqlite:'.length));
  const { record, key } = mintKey(input);
  await s.insert(record, hashKey(key));
  await s.close();
  return { id: record.id, key };
}
