import { checksum } from '../src/keys/key-format.ts';

/** The demo backend's data set for every run: alice's list is half of all devices. */
export const BENCH_USERS = ['alice', 'bob'] as const;
export const DEVICES_PER_USER = 2;
export const TOTAL_DEVICES = BENCH_USERS.length * DEVICES_PER_USER;
export const OWN_DEVICE = 'dev_alice_1';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * A well-formed (prefix, length, checksum) key nobody issued. Math.random instead of
 * generateKey()'s crypto.randomBytes: the load generator shares the machine with Keygate,
 * and the 401 flood needs one per request. Uniqueness, not secrecy, is what matters here
 * (62^32 bodies: a repeat in a million draws is practically impossible).
 */
export function unknownKey(prefix: 'api_' | 'scoped_' = 'api_'): string {
  let head = prefix;
  for (let i = 0; i < 32; i++) head += ALPHABET[(Math.random() * 62) | 0];
  return head + checksum(head);
}
