// `node bench/rate-limit-check.ts`: the rate-limit check in process, per request under
// its limit (local counters): choosing the rule, counting (GCRA), and the whole check with
// the RateLimit fields built for the answer. Medians of 61 batches, in ns.
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import type { Principal } from '../src/keys/principal.ts';
import { LocalCounters } from '../src/limits/local-counters.ts';
import { keyRule, RateLimiter } from '../src/limits/rate-limiter.ts';
import { compilePolicy } from '../src/policy/compile.ts';

const POLICY =
  "version: 1\nresources:\n  devices:\n    actions:\n      list: [GET /v1/devices]\nroles:\n  owner:\n    permissions: ['devices:list']\nkeyTypes:\n  server: []\n  connect: []\n  scoped: [owner]\n  operator: []\n  access-token: []\nrateLimits:\n  keyTypes:\n    scoped: { limit: 1000000000, window: 1s }\n";
const limits = compilePolicy([{ file: 'bench.yaml', text: POLICY }]).rateLimits;
const alice = { id: 'key_benchbenchbench01', type: 'scoped', roles: [] } as unknown as Principal;
const rule = keyRule(limits, alice)!;
const counters = new LocalCounters();
const limiter = new RateLimiter({ counters, onLimited: () => undefined });
const req = new IncomingMessage(new Socket());

const REPS = 200_000;

function measure(f: () => unknown): number {
  const times: number[] = [];
  for (let r = 0; r < 61; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < REPS; i++) f();
    times.push(Number(process.hrtime.bigint() - t0) / REPS);
  }
  return times.sort((a, b) => a - b)[30]!;
}

const show = (what: string, ns: number): void => void process.stdout.write(`${what.padEnd(48)} ${ns.toFixed(0).padStart(5)} ns\n`);

show(
  'rule for the key (keyRule)',
  measure(() => keyRule(limits, alice)),
);
show(
  'counting (LocalCounters.take, GCRA)',
  measure(() => counters.take(rule, alice.id, null, '')),
);
show(
  'whole check (rule, count, the two fields built)',
  measure(() => limiter.check(limits, alice, 'devices:list', req)),
);
