import type { IncomingMessage } from 'node:http';
import { isIPv6 } from 'node:net';
import type { TrustedHops } from '../pipeline/forwarding/trusted-hops.ts';

/**
 * The client a `per: client` limit counts: the peer, or behind a trusted proxy
 * (`--trust-proxy`) the address that proxy appended last to X-Forwarded-For (the entries
 * before it are the client's to write). An IPv6 client is counted by its /64, the block a
 * single subscriber is handed (RFC 6177): counting per address would give one machine
 * 2^64 budgets.
 */
export function clientAddress(req: IncomingMessage, trusted: TrustedHops | null | undefined): string {
  const peer = req.socket.remoteAddress ?? 'unknown';
  let address = peer;
  if (trusted?.has(peer) === true) {
    const xff = req.headers['x-forwarded-for'];
    const last = typeof xff === 'string' ? xff.slice(xff.lastIndexOf(',') + 1).trim() : '';
    if (last !== '') address = last;
  }
  return isIPv6(address) ? ipv6Block(address) : address;
}

/** The first four groups of an IPv6 address, `::` expanded; an IPv4-mapped address as its IPv4 form. */
export function ipv6Block(address: string): string {
  const lower = address.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (mapped !== null) return mapped[1]!;
  const zone = lower.indexOf('%');
  const bare = zone === -1 ? lower : lower.slice(0, zone);
  const double = bare.indexOf('::');
  let groups: string[];
  if (double === -1) groups = bare.split(':');
  else {
    const head = bare.slice(0, double) === '' ? [] : bare.slice(0, double).split(':');
    const tail = bare.slice(double + 2) === '' ? [] : bare.slice(double + 2).split(':');
    groups = [...head, ...Array<string>(Math.max(0, 8 - head.length - tail.length)).fill('0'), ...tail];
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
