import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCommand } from '../../src/cli/parse-command.ts';
import { UsageError } from '../../src/cli/usage-error.ts';
import { COMMANDS, type CommandSpec, DEMO, KEYS_CREATE, KEYS_LIST, POLICY_CHECK, SERVE } from '../../src/config/commands.ts';
import { ConfigError } from '../../src/config/config-error.ts';
import type { Options } from '../../src/config/option.ts';
import { serveConfig } from '../../src/config/serve-config.ts';
import { ROOT } from '../helpers/sidecar.ts';

const UP = ['--upstream', 'http://127.0.0.1:3000'];

function values<O extends Options>(spec: CommandSpec<O>, argv: string[], env: Record<string, string> = {}) {
  const parsed = parseCommand(spec, argv, env);
  if (parsed.help) throw new Error('unexpected help');
  return parsed.values;
}

function refusal(spec: CommandSpec, argv: string[], env: Record<string, string> = {}): ConfigError | UsageError {
  try {
    parseCommand(spec, argv, env);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof UsageError) return err;
    throw err;
  }
  throw new Error(`accepted: ${argv.join(' ')} ${JSON.stringify(env)}`);
}

describe('precedence: flag > environment > default', () => {
  it('the default applies when neither is given', () => {
    const v = values(SERVE, UP);
    expect(v.listen).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(v.store).toBe('sqlite:./data/keygate.db');
    expect(v.connectLinkTtlMs).toBe(30 * 60_000);
    expect(v.watchPolicies).toBe(true);
    expect(v.logLevel).toBe('info');
    expect(v.accessLog).toBe(true);
  });

  it('the environment wins over the default, the flag over the environment', () => {
    const env = { KEYGATE_LISTEN: '127.0.0.1:7000', KEYGATE_WORKERS: '3', KEYGATE_LOG_LEVEL: 'warn' };
    expect(values(SERVE, UP, env)).toMatchObject({ listen: { host: '127.0.0.1', port: 7000 }, workers: 3, logLevel: 'warn' });
    expect(values(SERVE, [...UP, '--listen', '[::1]:7001', '--workers=2'], env)).toMatchObject({ listen: { host: '::1', port: 7001 }, workers: 2, logLevel: 'warn' });
  });

  it('every documented variable is read (each one changes its option)', () => {
    const env: Record<string, string> = {
      KEYGATE_UPSTREAM: 'https://api.example.com',
      KEYGATE_LISTEN: '127.0.0.1:1',
      KEYGATE_OPS_LISTEN: '127.0.0.1:2',
      KEYGATE_POLICIES: '/p',
      KEYGATE_STORE: 'postgres://u@h:5432/db?schema=k',
      KEYGATE_PUBLIC_URL: 'https://keys.example.com/',
      KEYGATE_CONNECT_LINK_TTL: '10m',
      KEYGATE_UPSTREAM_TIMEOUT: '11',
      KEYGATE_UPSTREAM_BODY_TIMEOUT: '12',
      KEYGATE_MAX_BODY: '13',
      KEYGATE_MAX_UPSTREAM_BODY: '2048',
      KEYGATE_HELD_ANSWER_BUDGET: '4096',
      KEYGATE_CHECKED_ANSWER_BUDGET: '8192',
      KEYGATE_KEY_CACHE_TTL: '14',
      KEYGATE_DRAIN_TIMEOUT: '15',
      KEYGATE_WATCH_POLICIES: 'false',
      KEYGATE_WORKERS: '4',
      KEYGATE_LOG_LEVEL: 'error',
      KEYGATE_ACCESS_LOG: 'false',
      KEYGATE_LOG_BUFFER: '0',
      KEYGATE_TRUST_PROXY: '10.0.0.0/8',
      KEYGATE_UPSTREAM_CONNECTIONS: '64',
      KEYGATE_UPSTREAM_SHARE: 'scoped=2:10',
      KEYGATE_UPSTREAM_QUEUE: '16',
      KEYGATE_UPSTREAM_QUEUE_TIMEOUT: '17',
      KEYGATE_BODY_TIMEOUT: '18',
      KEYGATE_FIRST_BYTE_TIMEOUT: '19',
      KEYGATE_HEADERS_TIMEOUT: '20',
      KEYGATE_MAX_CONNECTIONS: '21',
      KEYGATE_REVOKE_EXPOSED_KEYS: 'true',
      KEYGATE_RATE_LIMIT_STORE: 'redis://redis.internal:6379/2',
    };
    const config = serveConfig(values(SERVE, [], env));
    expect(config).toMatchObject({
      upstream: 'https://api.example.com',
      listen: { port: 1 },
      opsListen: { port: 2 },
      policies: '/p',
      store: env.KEYGATE_STORE,
      publicUrl: 'https://keys.example.com',
      connectLinkTtlMs: 600_000,
      maxBodyBytes: 13,
      maxUpstreamBodyBytes: 2048,
      heldAnswerBudgetBytes: 4096,
      checkedAnswerBudgetBytes: 8192,
      keyCacheTtlMs: 14,
      drainTimeoutMs: 15,
      watchPolicies: false,
      workers: 4,
      logLevel: 'error',
      accessLog: false,
      logBufferBytes: 0,
      upstreamOptions: { headersTimeoutMs: 11, bodyTimeoutMs: 12, connections: 64 },
      keyCache: { positiveTtlMs: 14 },
      trustProxy: ['10.0.0.0/8'],
      bodyTimeoutMs: 18,
      deadlines: { firstByteMs: 19, headersMs: 20 },
      maxConnections: 21,
      revokeExposedKeys: true,
      rateLimitStore: 'redis://redis.internal:6379/2',
      admission: { connections: 64, shares: { scoped: { reserve: 2, max: 10 } }, queueLength: 16, queueTimeoutMs: 17 },
    });
    const rows = Object.values(SERVE.options).filter((r) => r.env !== undefined);
    expect(rows.map((r) => r.env).sort()).toEqual(Object.keys(env).sort());
  });

  it('an empty variable counts as unset; an empty flag value is refused', () => {
    expect(values(SERVE, UP, { KEYGATE_LISTEN: '' }).listen.port).toBe(8080);
    expect(refusal(SERVE, [...UP, '--listen='])).toMatchObject({ source: '--listen', message: '--listen needs a value (HOST:PORT)' });
  });

  it('the public URL defaults to http:// and the listen address', () => {
    expect(serveConfig(values(SERVE, [...UP, '--listen', '127.0.0.1:8081'])).publicUrl).toBe('http://127.0.0.1:8081');
    expect(serveConfig(values(SERVE, [...UP, '--listen', '[::1]:8081'])).publicUrl).toBe('http://[::1]:8081');
    expect(serveConfig(values(SERVE, [...UP, '--public-url', 'https://k.example.com/gate/'])).publicUrl).toBe('https://k.example.com/gate');
  });

  it('the demo has its own defaults and reads no environment', () => {
    const v = values(DEMO, [], { KEYGATE_LISTEN: '0.0.0.0:1', KEYGATE_LOG_LEVEL: 'verbose', KEYGATE_POLICIES: '/nowhere' });
    // No policies given: the demo writes its own (the shipped ones with the Connect device step on).
    expect(v).toMatchObject({ listen: { host: '127.0.0.1', port: 8080 }, opsListen: { host: '127.0.0.1', port: 9090 }, backendPort: 0, appPort: 0, policies: undefined, logLevel: 'info' });
  });

  it('repeatable flags collect every value; switches are off unless given', () => {
    const v = values(KEYS_CREATE, ['--type', 'access-token', '--role', 'a', '--role', 'b', '--condition', 'f:1', '--json']);
    expect(v).toMatchObject({ roles: ['a', 'b'], conditions: ['f:1'], json: true });
    expect(values(KEYS_CREATE, ['--type', 'server'])).toMatchObject({ roles: [], conditions: [], json: false });
    expect(values(KEYS_LIST, ['--limit', 'all']).limit).toBe(Infinity);
  });
});

// Each refusal: the arguments, the environment, and what the message must say (it names its source).
const SERVE_REFUSALS: Array<[string[], Record<string, string>, string]> = [
  [[], {}, '--upstream URL (or KEYGATE_UPSTREAM) is required'],
  [['--upstream', 'not a url'], {}, '--upstream: "not a url" is not a URL'],
  [['--upstream', 'ftp://x'], {}, '--upstream: "ftp://x" must be http:// or https://'],
  [['--upstream', 'http://x/api'], {}, '--upstream: "http://x/api" must be an origin without a path'],
  [[], { KEYGATE_UPSTREAM: 'http://x?y' }, 'KEYGATE_UPSTREAM: "http://x?y" must be an origin without a path'],
  [[...UP, '--listen', '8080'], {}, '--listen: "8080" is not HOST:PORT'],
  [[...UP], { KEYGATE_LISTEN: 'h:70000' }, 'KEYGATE_LISTEN: "h:70000" is not HOST:PORT'],
  [[...UP], { KEYGATE_OPS_LISTEN: ':9090' }, 'KEYGATE_OPS_LISTEN: ":9090" is not HOST:PORT'],
  [[...UP, '--store', 'mysql://db'], {}, '--store: "mysql://db" is not a store URL'],
  [[...UP], { KEYGATE_STORE: 'sqlite:' }, 'KEYGATE_STORE: "sqlite:" has no path'],
  [[...UP], { KEYGATE_STORE: 'postgres://u:hunter2@h/db?schema=1x' }, 'KEYGATE_STORE: schema "1x" must match'],
  [[...UP], { KEYGATE_STORE: 'postgres://h/db?schema=a&schema=b' }, 'KEYGATE_STORE: give schema= at most once'],
  [[...UP], { KEYGATE_STORE: 'postgres://u:hunter2@[bad/db' }, 'KEYGATE_STORE: "postgres://u:***@[bad/db" is not a valid postgres:// URL'],
  [[...UP, '--rate-limit-store', 'http://r:6379'], {}, '--rate-limit-store: "http://r:6379" must be a redis:// or rediss:// URL'],
  [[...UP], { KEYGATE_RATE_LIMIT_STORE: 'redis://u:hunter2@r/x' }, 'KEYGATE_RATE_LIMIT_STORE: "redis://u:***@r/x": the path must be a database number'],
  [[...UP], { KEYGATE_RATE_LIMIT_STORE: 'redis://:hunter2@[bad' }, 'KEYGATE_RATE_LIMIT_STORE: "redis://:***@[bad" is not a URL'],
  [[...UP, '--rate-limit-store', 'redis://'], {}, '--rate-limit-store: "redis://" has no host'],
  [[...UP, '--public-url', 'ftp://k'], {}, '--public-url: "ftp://k" must be http:// or https://'],
  [[...UP, '--public-url', 'https://k/?a=1'], {}, '--public-url: "https://k/?a=1" must not have a query or fragment'],
  [[...UP], { KEYGATE_PUBLIC_URL: 'https://u:p@k' }, 'KEYGATE_PUBLIC_URL: "https://u:p@k" must not hold credentials'],
  [[...UP, '--connect-link-ttl', '30'], {}, '--connect-link-ttl: "30" must be a duration like 30s'],
  [[...UP], { KEYGATE_CONNECT_LINK_TTL: '25h' }, 'KEYGATE_CONNECT_LINK_TTL: "25h" is longer than 24h'],
  [[...UP], { KEYGATE_CONNECT_LINK_TTL: '0s' }, 'KEYGATE_CONNECT_LINK_TTL: "0s" must be a duration'],
  [[...UP, '--upstream-timeout', '1.5'], {}, '--upstream-timeout: "1.5" must be a whole number of milliseconds, at least 1'],
  [[...UP], { KEYGATE_UPSTREAM_BODY_TIMEOUT: '0' }, 'KEYGATE_UPSTREAM_BODY_TIMEOUT: "0" must be a whole number of milliseconds'],
  [[...UP, '--max-body=-5'], {}, '--max-body: "-5" must be a whole number of bytes'],
  [[...UP, '--key-cache-ttl', '5001'], {}, '--key-cache-ttl: "5001" must be a whole number of milliseconds, 1 to 5000'],
  [[...UP], { KEYGATE_DRAIN_TIMEOUT: '10s' }, 'KEYGATE_DRAIN_TIMEOUT: "10s" must be a whole number of milliseconds'],
  [[...UP, '--watch-policies', 'no'], {}, '--watch-policies: "no" must be true or false'],
  [[...UP], { KEYGATE_WATCH_POLICIES: '0' }, 'KEYGATE_WATCH_POLICIES: "0" must be true or false'],
  [[...UP], { KEYGATE_ACCESS_LOG: 'TRUE' }, 'KEYGATE_ACCESS_LOG: "TRUE" must be true or false'],
  [[...UP, '--workers', '0'], {}, '--workers: "0" must be a whole number of processes, 1 to 64'],
  [[...UP], { KEYGATE_WORKERS: '65' }, 'KEYGATE_WORKERS: "65" must be a whole number of processes, 1 to 64'],
  [[...UP], { KEYGATE_LOG_LEVEL: 'verbose' }, 'KEYGATE_LOG_LEVEL: "verbose" must be one of fatal, error, warn, info, debug, trace, silent'],
  [[...UP, '--log-level', 'WARN'], {}, '--log-level: "WARN" must be one of'],
  [[...UP], { KEYGATE_LOG_BUFFER: '-1' }, 'KEYGATE_LOG_BUFFER: "-1" must be a whole number of bytes, 0 to 16777216'],
  [[...UP, '--log-buffer', '16777217'], {}, '--log-buffer: "16777217" must be a whole number of bytes, 0 to 16777216'],
];

describe('every refusal of serve names the flag or variable (ConfigError)', () => {
  for (const [argv, env, message] of SERVE_REFUSALS) {
    it(message, () => {
      const err = refusal(SERVE, argv, env);
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message.startsWith(message)).toBe(true);
      expect((err as ConfigError).source).toBe(message.split(/[: ]/, 1)[0]);
      expect(err.message).not.toContain('hunter2');
    });
  }
});

describe('refusals of the other commands', () => {
  const cases: Array<[CommandSpec, string[], string]> = [
    [KEYS_CREATE, [], '--type TYPE is required'],
    [KEYS_CREATE, ['--type', 'root'], '--type: "root" must be one of server, connect, scoped, operator, access-token'],
    [KEYS_CREATE, ['--type', 'scoped', '--reference-id', 'a b'], '--reference-id: must be 1 to 256 visible ASCII characters'],
    [KEYS_CREATE, ['--type', 'operator', '--condition', 'site'], '--condition: "site" must be written attribute:value'],
    [KEYS_CREATE, ['--type', 'operator', '--condition', 'site:'], '--condition: "site:" must be written attribute:value'],
    [KEYS_CREATE, ['--type', 'operator', '--condition', 'site:a,b'], '--condition: "site:a,b": values may not contain a comma'],
    [KEYS_CREATE, ['--type', 'server', '--expires-in', 'soon'], '--expires-in: "soon" must be a duration'],
    [KEYS_LIST, ['--limit', '0'], '--limit: "0" must be a whole number of keys, at least 1, or all'],
    [KEYS_LIST, ['--type', 'admin'], '--type: "admin" must be one of'],
    [DEMO, ['--backend-port', '65536'], '--backend-port: "65536" must be a whole number of port, 0 to 65535'],
  ];
  for (const [spec, argv, message] of cases) {
    it(`${spec.name}: ${message}`, () => {
      const err = refusal(spec, argv);
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message.startsWith(message), err.message).toBe(true);
    });
  }
});

describe('usage errors (UsageError, exit 2) name the flag', () => {
  const cases: Array<[CommandSpec, string[], string]> = [
    [SERVE, [...UP, '--bogus'], "Unknown option '--bogus'"],
    [SERVE, [...UP, '-l', '127.0.0.1:1'], "Unknown option '-l'"],
    [SERVE, [...UP, '--listen'], '--listen needs a value'],
    [SERVE, [...UP, '--listen', '--workers', '2'], '--listen needs a value (write --listen=VALUE'],
    [SERVE, [...UP, '--listen', 'a:1', '--listen=b:2'], '--listen given more than once'],
    [SERVE, [...UP, 'extra'], "Unexpected argument 'extra'"],
    [KEYS_LIST, ['--json=yes'], "Option '--json' does not take an argument"],
    [POLICY_CHECK, ['a', 'b'], 'expected [PATH], got "a" "b"'],
  ];
  for (const [spec, argv, message] of cases) {
    it(`${spec.name} ${argv.join(' ')}`, () => {
      const err = refusal(spec, argv);
      expect(err).toBeInstanceOf(UsageError);
      expect(err.message.startsWith(message), err.message).toBe(true);
    });
  }

  it('--help and -h win over anything else on the line', () => {
    expect(parseCommand(SERVE, ['--bogus', '-h'], {})).toEqual({ help: true });
    expect(parseCommand(KEYS_LIST, ['--help'], {})).toEqual({ help: true });
    expect(() => parseCommand(KEYS_LIST, ['--', '--help'], {})).toThrow(UsageError);
  });
});

describe('the tables', () => {
  it('every default parses, flags are unique and variables are KEYGATE_*', () => {
    for (const spec of COMMANDS) {
      const required = Object.values(spec.options)
        .filter((r) => r.required === true)
        .flatMap((r) => [`--${r.flag}`, r.flag === 'type' ? 'server' : 'http://x']);
      const positionals = Array.from({ length: spec.positionals.min }, () => 'x');
      expect(() => parseCommand(spec, [...required, ...positionals], {}), spec.name).not.toThrow();
      const flags = Object.values(spec.options).map((r) => r.flag);
      expect(new Set(flags).size, spec.name).toBe(flags.length);
      for (const row of Object.values(spec.options)) if (row.env !== undefined) expect(row.env).toMatch(/^KEYGATE_[A-Z_]+$/);
    }
  });

  it('the environment is read in one place only (src/config/resolve.ts)', () => {
    const readers: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (name.endsWith('.ts') && readFileSync(path, 'utf8').includes('process.env')) readers.push(path.slice(ROOT.length + 1));
      }
    };
    walk(join(ROOT, 'src'));
    expect(readers).toEqual(['src/config/resolve.ts']);
  });
});
