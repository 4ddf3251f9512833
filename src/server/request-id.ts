import { randomBytes, randomFillSync } from 'node:crypto';

// `PREFIX-RANDOM`: the process's random prefix (which replica, in the logs), then 96
// random bits in hex. Not a counter: a client that sees two of its ids must not learn how
// many requests other keys made between them (invariant 10). 96 bits make a repeat within
// one process negligible (about 10^-11 after 10^9 ids). The bits are drawn from the CSPRNG
// in batches (one randomFillSync per 256 ids), so a request costs a hex slice and a concat.
const PREFIX = randomBytes(4).toString('hex');
const ID_BYTES = 12;
const pool = Buffer.allocUnsafeSlow(ID_BYTES * 256);
let offset = pool.length;

export function nextRequestId(): string {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const start = offset;
  offset += ID_BYTES;
  return PREFIX + '-' + pool.toString('hex', start, offset);
}
