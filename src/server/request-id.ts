import { randomBytes } from 'node:crypto';

// A per-process random prefix and a counter: unique across replicas without a syscall per request.
const PREFIX = randomBytes(4).toString('hex');
let counter = 0;

export function nextRequestId(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return PREFIX + '-' + counter.toString(36);
}
