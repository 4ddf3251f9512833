// The CLI as a user meets it: help, version, refusals, exit codes and where stores are made.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/config/commands.ts';
import { type DemoBackend, startDemoBackend } from '../../src/demo/backend.ts';
import { send } from '../helpers/http.ts';
import { BIN, POLICIES, ROOT, seedKeys, startSidecar, tempDir, tempStore } from '../helpers/sidecar.ts';

function cli(args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}) {
  return spawnSync(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, encoding: 'utf8', env: { ...process.env, ...opts.env }, timeout: 20_000 });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('help and version', () => {
  for (const spec of COMMANDS) {
    it(`keygate ${spec.name} --help lists every flag with its default and variable, exit 0`, () => {
      for (const help of ['--help', '-h']) {
        const r = cli([...spec.name.split(' '), help]);
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout.startsWith(`usage: keygate ${spec.name}`)).toBe(true);
        for (const row of Object.values(spec.options)) {
          expect(r.stdout).toContain(`--${row.flag}`);
          if (row.default !== undefined) expect(r.stdout).toContain(`default ${row.default}`);
          if (row.env !== undefined) expect(r.stdout).toContain(`env ${row.env}`);
        }
      }
    });
  }

  it('keygate --help, keygate help CMD, keygate keys --help', () => {
    const top = cli(['--help']);
    expect(top.status).toBe(0);
    for (const spec of COMMANDS) expect(top.stdout).toContain(spec.name);
    expect(cli(['help', 'keys', 'list']).stdout).toBe(cli(['keys', 'list', '--help']).stdout);
    expect(cli(['keys', '--help']).stdout).toContain('keygate keys revoke');
    expect(cli(['policy', '--help']).stdout).toContain('keygate policy explain');
  });

  it('keygate --version prints the package version', () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = cli(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`keygate ${version}\n`);
  });
});

describe('refusals exit 2 and name the flag or variable', () => {
  const cases: Array<[string[], Record<string, string>, string]> = [
    [['keys', 'list', '-j'], {}, "Unknown option '-j'"],
    [['keys', 'list', '--store'], {}, '--store needs a value'],
    [['keys', 'list', '--store', 'mysql://db/keys'], {}, '--store: "mysql://db/keys" is not a store URL'],
    [['keys', 'list'], { KEYGATE_STORE: 'redis://x' }, 'KEYGATE_STORE: "redis://x" is not a store URL'],
    [['serve', '--upstream', 'http://127.0.0.1:1', '--watch-policies', 'no'], {}, '--watch-policies: "no" must be true or false'],
    [['serve', '--upstream', 'http://127.0.0.1:1'], { KEYGATE_LOG_LEVEL: 'verbose' }, 'KEYGATE_LOG_LEVEL: "verbose" must be one of'],
    [['serve', '--upstream', 'http://127.0.0.1:1', '--store', 'sqlite:'], {}, '--store: "sqlite:" has no path'],
    [['keys', 'create', '--type', 'scoped'], {}, '--reference-id: a scoped key needs a referenceId'],
    [['keys', 'create', '--type', 'server', '--role', 'admin'], {}, '--role: roles and conditions are for operator keys and access tokens'],
    [['keys', 'create', '--type', 'connect', '--condition', 'site:s1'], {}, '--condition: roles and conditions are for operator keys and access tokens'],
    [['keys', 'revoke'], {}, 'expected ID, got none'],
    [['demo', '--listen', 'nowhere'], {}, '--listen: "nowhere" is not HOST:PORT'],
    [['policy', 'check', 'a', '--policies', 'b'], {}, 'give the policies once'],
    [['nope'], {}, 'unknown command "nope"'],
  ];
  for (const [args, env, message] of cases) {
    it(`${args.join(' ')} ${Object.entries(env)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`, () => {
      const r = cli(args, { env });
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toContain(message);
      expect(r.stdout).toBe('');
    });
  }
});

describe('only serve and keys create make a store, and only in a directory that exists', () => {
  it('keys list and keys revoke on a missing SQLite file fail (exit 1) and create nothing', () => {
    const dir = join(tempDir(), 'missing');
    for (const args of [
      ['keys', 'list'],
      ['keys', 'revoke', 'key_x'],
    ]) {
      const r = cli([...args, '--store', `sqlite:${dir}/x.db`]);
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toContain(`key store sqlite:${dir}/x.db does not exist`);
      expect(r.stdout).toBe('');
    }
    const inExisting = cli(['keys', 'list', '--store', `sqlite:${tempDir()}/x.db`]);
    expect(inExisting.status).toBe(1);
    expect(existsSync(dir)).toBe(false);
  });

  it('keys create makes the file, but not a missing directory', () => {
    const base = tempDir();
    const refused = cli(['keys', 'create', '--type', 'server', '--store', `sqlite:${base}/typo/keys.db`]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain(`directory ${base}/typo does not exist`);
    expect(existsSync(join(base, 'typo'))).toBe(false);
    const made = cli(['keys', 'create', '--type', 'server', '--store', `sqlite:${base}/keys.db`, '--json']);
    expect(made.status, made.stderr).toBe(0);
    expect(cli(['keys', 'list', '--store', `sqlite:${base}/keys.db`]).stdout).toContain(JSON.parse(made.stdout).id);
  });

  it('serve refuses a store in a missing directory (exit 1) and makes one in an existing directory', async () => {
    const base = tempDir();
    const refused = cli(['serve', '--upstream', 'http://127.0.0.1:1', '--listen', '127.0.0.1:0', '--ops-listen', '127.0.0.1:0', '--store', `sqlite:${base}/typo/keys.db`]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain(`directory ${base}/typo does not exist`);
    const sidecar = await startSidecar({ upstream: 'http://127.0.0.1:1', store: `sqlite:${base}/keys.db` });
    try {
      expect(existsSync(join(base, 'keys.db'))).toBe(true);
    } finally {
      await sidecar.stop();
    }
  });

  it('the default store, ./data/keygate.db, works where ./data exists (the repository ships it) and is refused elsewhere', () => {
    expect(existsSync(join(ROOT, 'data'))).toBe(true);
    const clone = tempDir();
    mkdirSync(join(clone, 'data'));
    expect(cli(['keys', 'create', '--type', 'server'], { cwd: clone }).status).toBe(0);
    expect(existsSync(join(clone, 'data/keygate.db'))).toBe(true);
    expect(cli(['keys', 'list'], { cwd: clone }).stdout).toContain('server');
    const elsewhere = cli(['keys', 'create', '--type', 'server'], { cwd: tempDir() });
    expect(elsewhere.status).toBe(1);
    expect(elsewhere.stderr).toMatch(/directory \S+\/data does not exist/);
  });
});

describe('log level and access log are separate switches', () => {
  let backend: DemoBackend;
  let store: string;
  let server: string;
  beforeAll(async () => {
    backend = await startDemoBackend({ port: 0, record: false });
    store = tempStore();
    server = (await seedKeys(store)).server;
  });
  afterAll(async () => {
    await backend.close();
  });

  it('--access-log false: no access lines, start-up lines as usual', async () => {
    const sidecar = await startSidecar({ upstream: backend.url, store, args: ['--access-log', 'false'] });
    try {
      expect((await send(sidecar.url, 'GET', '/v1/devices', { headers: { 'texture-api-key': server } })).status).toBe(200);
      expect((await send(sidecar.url, 'GET', '/v1/devices')).status).toBe(401);
    } finally {
      expect(await sidecar.stop()).toBe(0);
    }
    expect(sidecar.logs.some((l) => l.msg === 'keygate listening')).toBe(true);
    expect(sidecar.logs.filter((l) => l.msg === 'access')).toEqual([]);
  });

  it('--log-level warn keeps the access log and drops the info lines', async () => {
    const [listen, ops] = [await freePort(), await freePort()];
    const proc = spawn(
      process.execPath,
      [BIN, 'serve', '--upstream', backend.url, '--store', store, '--policies', POLICIES, '--listen', `127.0.0.1:${listen}`, '--ops-listen', `127.0.0.1:${ops}`, '--log-level', 'warn'],
      {
        cwd: ROOT,
        env: { ...process.env, KEYGATE_LOG_BUFFER: '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve));
    try {
      let ready = false;
      for (let i = 0; i < 100 && !ready; i++) {
        ready = await send(`http://127.0.0.1:${ops}`, 'GET', '/healthz').then(
          (r) => r.status === 200,
          () => false,
        );
        if (!ready) await new Promise((r) => setTimeout(r, 100));
      }
      expect(ready).toBe(true);
      expect((await send(`http://127.0.0.1:${listen}`, 'GET', '/v1/devices')).status).toBe(401);
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      proc.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => l.msg === 'access').map((l) => l.status)).toEqual([401]);
    expect(lines.some((l) => l.msg === 'keygate listening')).toBe(false);
  });
});
