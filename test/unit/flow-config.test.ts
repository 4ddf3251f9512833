// The serve options of flow control: admission, body, connection deadlines, connection cap.
import { describe, expect, it } from 'vitest';
import { parseCommand } from '../../src/cli/parse-command.ts';
import { UsageError } from '../../src/cli/usage-error.ts';
import { SERVE } from '../../src/config/commands.ts';
import { ConfigError } from '../../src/config/config-error.ts';
import { serveConfig } from '../../src/config/serve-config.ts';
import { checkingIntervalMs } from '../../src/server/connections.ts';
import { openFileLimit, proxyConnectionCap } from '../../src/server/fd-limit.ts';

const UPSTREAM = ['--upstream', 'http://127.0.0.1:3000'];

function config(argv: string[], env: Record<string, string> = {}) {
  const parsed = parseCommand(SERVE, [...UPSTREAM, ...argv], env);
  if (parsed.help) throw new Error('unexpected help');
  return serveConfig(parsed.values);
}

function refusal(argv: string[], env: Record<string, string> = {}): string {
  try {
    config(argv, env);
  } catch (err) {
    expect(err instanceof ConfigError || err instanceof UsageError).toBe(true);
    return (err as Error).message;
  }
  throw new Error('accepted');
}

describe('flow-control options', () => {
  it('defaults', () => {
    const c = config([]);
    expect(c.upstreamOptions.connections).toBe(128);
    expect(c.admission.connections).toBe(128);
    expect(c.admission.shares.server).toEqual({ reserve: 32, max: 128 });
    expect(c.admission.shares.connect).toEqual({ reserve: 4, max: 32 });
    expect(c.admission.queueLength).toBe(1024);
    expect(c.admission.queueTimeoutMs).toBe(1000);
    expect(c.admission.bodyBytes).toBe(32 * 1024 * 1024);
    expect(c.bodyTimeoutMs).toBe(5000);
    expect(c.deadlines).toEqual({ firstByteMs: 5000, headersMs: 10_000 });
    expect(c.maxConnections).toBe('auto');
  });

  it('flags, and environment variables under them', () => {
    const c = config(['--upstream-connections', '64', '--upstream-queue', '10', '--body-timeout', '1500', '--first-byte-timeout', '2000', '--max-connections', '500'], {
      KEYGATE_UPSTREAM_QUEUE: '99',
      KEYGATE_UPSTREAM_QUEUE_TIMEOUT: '250',
      KEYGATE_HEADERS_TIMEOUT: '3000',
      KEYGATE_MAX_BODY: '1000',
    });
    expect(c.upstreamOptions.connections).toBe(64);
    expect(c.admission.shares.server).toEqual({ reserve: 16, max: 64 }); // defaults scale with the pool
    expect(c.admission.queueLength).toBe(10);
    expect(c.admission.queueTimeoutMs).toBe(250);
    expect(c.admission.bodyBytes).toBe(32 * 1000);
    expect(c.bodyTimeoutMs).toBe(1500);
    expect(c.deadlines).toEqual({ firstByteMs: 2000, headersMs: 3000 });
    expect(c.maxConnections).toBe(500);
    expect(config(['--max-connections', 'auto']).maxConnections).toBe('auto');
  });

  it('--upstream-share replaces the classes it names', () => {
    const c = config(['--upstream-share', 'scoped=2:10, lookup=3:3']);
    expect(c.admission.shares.scoped).toEqual({ reserve: 2, max: 10 });
    expect(c.admission.shares.lookup).toEqual({ reserve: 3, max: 3 });
    expect(c.admission.shares.server).toEqual({ reserve: 32, max: 128 });
    expect(config([], { KEYGATE_UPSTREAM_SHARE: 'connect=1:2' }).admission.shares.connect).toEqual({ reserve: 1, max: 2 });
  });

  it('refusals name the flag', () => {
    expect(refusal(['--upstream-connections', '0'])).toMatch(/^--upstream-connections:/);
    expect(refusal(['--upstream-connections', '4'])).toMatch(/^--upstream-connections: "4" must be a whole number of connections, at least 8/);
    expect(refusal(['--upstream-queue=-1'])).toMatch(/^--upstream-queue:/);
    expect(refusal(['--upstream-queue-timeout', '1.5'])).toMatch(/^--upstream-queue-timeout:/);
    expect(refusal(['--body-timeout', 'soon'])).toMatch(/^--body-timeout:/);
    expect(refusal(['--body-timeout', '30001'])).toMatch(/^--body-timeout: "30001" must be a whole number of milliseconds, 1 to 30000/);
    expect(refusal(['--first-byte-timeout', '0'])).toMatch(/^--first-byte-timeout:/);
    expect(refusal(['--headers-timeout', '60000'])).toMatch(/^--headers-timeout: "60000" must be a whole number of milliseconds, 1 to 30000/);
    expect(refusal(['--max-connections', 'lots'])).toMatch(/^--max-connections:/);
    expect(refusal(['--upstream-share', 'scoped=8'])).toMatch(/^--upstream-share: "scoped=8" is not TYPE=RESERVE:MAX/);
    expect(refusal(['--upstream-share', 'robots=1:2'])).toMatch(/^--upstream-share: "robots" is not one of server, connect, scoped, operator, access-token, lookup/);
    expect(refusal(['--upstream-share', 'scoped=9:4'])).toMatch(/^--upstream-share: scoped: reserve 9 is above its max 4/);
    expect(refusal(['--upstream-share', 'server=120:128'])).toMatch(/^--upstream-share: the reserves add up to/);
    expect(refusal([], { KEYGATE_UPSTREAM_QUEUE: 'x' })).toMatch(/^KEYGATE_UPSTREAM_QUEUE:/);
  });
});

describe('open-file limit', () => {
  const limits = (soft: string) => `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            ${soft}                 1048576              files
Max locked memory         8388608              8388608              bytes
`;

  it('reads the soft limit from /proc/self/limits', () => {
    expect(openFileLimit(limits('1024'))).toBe(1024);
    expect(openFileLimit(limits('unlimited'))).toBeNull();
    expect(openFileLimit('')).toBeNull();
    // this process's own
    const own = openFileLimit();
    if (process.platform === 'linux') expect(own).toBeGreaterThan(0);
  });

  it('leaves the backend pool and a reserve out of the proxy listener', () => {
    expect(proxyConnectionCap(1024, 128)).toBe(1024 - 128 - 128);
    expect(proxyConnectionCap(null, 128)).toBeNull();
  });

  it('checks header deadlines every tenth of their value, at most every second', () => {
    expect(checkingIntervalMs(10_000)).toBe(1000);
    expect(checkingIntervalMs(1000)).toBe(100);
    expect(checkingIntervalMs(30_000)).toBe(1000);
  });
});
