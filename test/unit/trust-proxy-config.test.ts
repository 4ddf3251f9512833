import { describe, expect, it } from 'vitest';
import { parseCommand } from '../../src/cli/parse-command.ts';
import { SERVE } from '../../src/config/commands.ts';
import { serveConfig } from '../../src/config/serve-config.ts';
import { cidrList } from '../../src/config/values.ts';
import { trustedHops } from '../../src/pipeline/forwarding/trusted-hops.ts';

const UPSTREAM = ['--upstream', 'http://127.0.0.1:3000'];

function config(argv: string[], env: Record<string, string>) {
  const parsed = parseCommand(SERVE, argv, env);
  if (parsed.help) throw new Error('unexpected help');
  return serveConfig(parsed.values);
}

describe('--trust-proxy', () => {
  it('is empty by default: no hop is trusted', () => {
    expect(config(UPSTREAM, {}).trustProxy).toEqual([]);
  });

  it('takes repeated flags and comma lists, addresses and CIDR ranges, IPv4 and IPv6', () => {
    const c = config([...UPSTREAM, '--trust-proxy', '10.0.0.0/8', '--trust-proxy', '192.0.2.7, fd00::/8', '--trust-proxy=::1'], {});
    expect(c.trustProxy).toEqual(['10.0.0.0/8', '192.0.2.7/32', 'fd00::/8', '::1/128']);
    expect(Object.isFrozen(c.trustProxy)).toBe(true);
  });

  it('reads KEYGATE_TRUST_PROXY (comma-separated) when no flag is given; the flag wins', () => {
    expect(config(UPSTREAM, { KEYGATE_TRUST_PROXY: '10.1.0.0/16,127.0.0.1' }).trustProxy).toEqual(['10.1.0.0/16', '127.0.0.1/32']);
    expect(config([...UPSTREAM, '--trust-proxy', '10.2.0.0/16'], { KEYGATE_TRUST_PROXY: '10.1.0.0/16' }).trustProxy).toEqual(['10.2.0.0/16']);
  });

  it.each(['10.0.0.0/33', 'fd00::/129', 'example.com', '10.0.0/8', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/8x'])('refuses %s, naming the option', (bad) => {
    expect(() => config([...UPSTREAM, '--trust-proxy', bad], {})).toThrow(/^--trust-proxy: .* is not an IP address or CIDR range/);
    expect(() => cidrList(bad)).toThrow(/is not an IP address or CIDR range/);
  });

  it('names the environment variable when the bad value came from it', () => {
    expect(() => config(UPSTREAM, { KEYGATE_TRUST_PROXY: 'nope' })).toThrow(/KEYGATE_TRUST_PROXY: "nope"/);
  });

  it('matches peers in the ranges, IPv4-mapped IPv6 included', () => {
    const hops = trustedHops(['10.0.0.0/8', 'fd00::/8'])!;
    expect(hops.has('10.9.8.7')).toBe(true);
    expect(hops.has('::ffff:10.9.8.7')).toBe(true);
    expect(hops.has('fd12::1')).toBe(true);
    expect(hops.has('11.0.0.1')).toBe(false);
    expect(hops.has(undefined)).toBe(false);
    expect(trustedHops([])).toBeNull();
  });
});
