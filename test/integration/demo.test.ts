// `keygate demo` as the README's first command runs it: a real process, real ports.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../helpers/http.ts';
import { BIN, ROOT, tempDir } from '../helpers/sidecar.ts';

interface Demo {
  stderr: () => string;
  exited: Promise<number | null>;
  kill(signal: NodeJS.Signals): void;
}

/** The demo with a temporary directory of its own (TMPDIR), to see what it leaves there. */
function demo(args: string[], tmp: string): Demo {
  const proc = spawn(process.execPath, [BIN, 'demo', ...args], { cwd: ROOT, env: { ...process.env, TMPDIR: tmp, KEYGATE_LOG_BUFFER: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (c: Buffer) => (err += c.toString()));
  proc.stdout.resume();
  return { stderr: () => err, exited: new Promise((resolve) => proc.once('exit', resolve)), kill: (s) => proc.kill(s) };
}

async function printed(d: Demo): Promise<string> {
  for (let i = 0; i < 200 && !d.stderr().includes('Ctrl-C stops the demo'); i++) await new Promise((r) => setTimeout(r, 50));
  return d.stderr();
}

const FREE = ['--listen', '127.0.0.1:0', '--ops-listen', '127.0.0.1:0'];

describe('keygate demo', () => {
  let taken: Server;
  let takenPort: number;
  beforeAll(async () => {
    taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    takenPort = (taken.address() as { port: number }).port;
  });
  afterAll(() => taken.close());

  for (const flag of ['--listen', '--ops-listen', '--backend-port', '--app-port']) {
    it(`${flag} on a port in use: exits 1 at once, names the flag, leaves no store and no keys`, async () => {
      const tmp = tempDir();
      const args =
        flag === '--backend-port' || flag === '--app-port' ? [...FREE, flag, String(takenPort)] : [...FREE.filter((a, i, all) => a !== flag && all[i - 1] !== flag), flag, `127.0.0.1:${takenPort}`];
      const d = demo(args, tmp);
      const code = await Promise.race([d.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000))]);
      if (code === 'hung') d.kill('SIGKILL');
      expect(code).toBe(1);
      expect(d.stderr()).toContain('EADDRINUSE');
      expect(d.stderr()).toContain(`choose another address with ${flag}`);
      expect(d.stderr()).not.toMatch(/api_|scoped_/);
      expect(readdirSync(tmp)).toEqual([]);
    });
  }

  it('prints four working keys; a second run has fresh keys; each store is removed when its demo stops', async () => {
    const tmp = tempDir();
    const runs: Array<{ keys: Record<string, string>; store: string }> = [];
    for (let run = 0; run < 2; run++) {
      const d = demo(FREE, tmp);
      const text = await printed(d);
      const keys = Object.fromEntries([...text.matchAll(/^ {2}(server|connect|alice|bob) +((?:api|scoped)_\w+)/gm)].map((m) => [m[1]!, m[2]!]));
      expect(Object.keys(keys)).toEqual(['server', 'connect', 'alice', 'bob']);
      const base = /sidecar +(http:\/\/127\.0\.0\.1:\d+)/.exec(text)![1]!;
      const store = /key store +sqlite:(\S+)/.exec(text)![1]!;
      expect(existsSync(store)).toBe(true);
      const get = (key: string) => send(base, 'GET', '/v1/devices', { headers: { 'texture-api-key': key } });
      expect((await get(keys.server!)).status).toBe(200);
      const bobs = await get(keys.bob!);
      expect(bobs.status).toBe(200);
      expect(bobs.json.data.map((dev: { referenceId: string }) => dev.referenceId)).toEqual(['bob', 'bob']);
      expect((await send(base, 'GET', '/v1/devices/dev_bob_1', { headers: { 'texture-api-key': keys.alice! } })).status).toBe(403);
      for (const earlier of runs) expect((await get(earlier.keys.server!)).status).toBe(401);
      d.kill('SIGTERM');
      expect(await d.exited).toBe(0);
      expect(existsSync(store)).toBe(false);
      runs.push({ keys, store });
    }
    expect(runs[0]!.store).not.toBe(runs[1]!.store);
    expect(readdirSync(tmp)).toEqual([]);
  });
});
