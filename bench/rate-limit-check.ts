// `node bench/rate-limit-check.ts`: the rate-limit check in process, per request under
// its limit (local counters): choosing the rule, counting (GCRA), and the whole check with
// the RateLimit fields set on a real ServerResponse. Medians of 61 batches, in ns, with
// the heap allocated per check (run with --expose-gc for that figure).
import { IncomingMessage, ServerResponse } from 'node:http';
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
const res = new ServerResponse(req);

const REPS = 200_000;
const gc = (globalThis as { gc?: () => void }).gc;

function measure(f: () => unknown): { ns: number; bytes: number | undefined } {
  const times: number[] = [];
  for (let r = 0; r < 61; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < REPS; i++) f();
    times.push(Number(process.hrtime.bigint() - t0) / REPS);
  }
  let bytes: number | undefined;
  if (gc !== undefined) {
    gc();
    const h0 = process.memoryUsage().heapUsed;
    for (let i = 0; i < REPS; i++) f();
    bytes = (process.memoryUsage().heapUsed - h0) / REPS;
  }
  return { ns: times.sort((a, b) => a - b)[30]!, bytes };
}

const show = (what: string, m: { ns: number; bytes: number | undefined }): void =>
  void process.stdout.write(`${what.padEnd(44)} ${m.ns.toFixed(0).padStart(5)} ns${m.bytes === undefined ? '' : `  ${m.bytes.toFixed(0)} B allocated`}\n`);

show(
  'rule for the key (keyRule)',
  measure(() => keyRule(limits, alice)),
);
show(
  'counting (LocalCounters.take, GCRA)',
  measure(() => counters.take(rule, alice.id, null, '')),
);
show(
  'whole check (rule, count, two header fields)',
  measure(() => limiter.check(limits, alice, 'devices:list', req, res)),
);
