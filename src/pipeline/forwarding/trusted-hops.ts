import { BlockList, isIPv6 } from 'node:net';

/**
 * The proxies in front of Keygate (`--trust-proxy`): a request from one of them keeps the
 * forwarding headers and request id it carries; from anywhere else they are replaced
 * with what Keygate saw (see ../mutate.ts).
 */
export interface TrustedHops {
  has(address: string | undefined): boolean;
}

/** From `address/prefix` strings (config/values.ts has checked them); null when there are none. */
export function trustedHops(cidrs: readonly string[]): TrustedHops | null {
  if (cidrs.length === 0) return null;
  const list = new BlockList();
  for (const cidr of cidrs) {
    const slash = cidr.lastIndexOf('/');
    const address = cidr.slice(0, slash);
    list.addSubnet(address, Number(cidr.slice(slash + 1)), isIPv6(address) ? 'ipv6' : 'ipv4');
  }
  // BlockList matches an IPv4-mapped IPv6 peer (::ffff:10.0.0.1) against IPv4 subnets too.
  return { has: (address) => address !== undefined && list.check(address, isIPv6(address) ? 'ipv6' : 'ipv4') };
}
