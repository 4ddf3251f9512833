// Whom a `per: client` limit counts: the peer, or a trusted proxy's last X-Forwarded-For
// entry; IPv6 clients by their /64.
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { clientAddress, ipv6Block } from '../../../src/limits/client-address.ts';
import { trustedHops } from '../../../src/pipeline/forwarding/trusted-hops.ts';

const req = (peer: string, xff?: string) => ({ socket: { remoteAddress: peer }, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } }) as unknown as IncomingMessage;

describe('clientAddress', () => {
  const hops = trustedHops(['10.0.0.0/8']);
  it.each([
    ['an untrusted peer: its own address, whatever it claims', req('198.51.100.7', '1.2.3.4'), '198.51.100.7'],
    ['a trusted proxy: the entry it appended last', req('10.1.2.3', '1.2.3.4, 203.0.113.9'), '203.0.113.9'],
    ['a trusted proxy without the header: the proxy', req('10.1.2.3'), '10.1.2.3'],
    ['an IPv6 peer: its /64', req('2001:db8:aa:bb:1:2:3:4'), '2001:db8:aa:bb::/64'],
    ['an IPv4-mapped peer: the IPv4 address', req('::ffff:198.51.100.7'), '198.51.100.7'],
  ])('%s', (_what, r, expected) => {
    expect(clientAddress(r, hops)).toBe(expected);
  });
});

describe('ipv6Block', () => {
  it.each([
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:DB8:0001:0002::abcd', '2001:db8:1:2::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
  ])('%s → %s', (address, block) => {
    expect(ipv6Block(address)).toBe(block);
  });
});
