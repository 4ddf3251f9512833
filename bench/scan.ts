// `node bench/scan.ts`: the answer check in process, per byte and per item, on the demo
// backend's device lists (the growth bench's answers): the clean-answer proof alone, and
// the whole list check (proof, Keygate's envelope, headers), on the answer as one buffer,
// as the 64 KB pieces undici hands over (held unjoined), and as those pieces joined first.
// Medians of 61 batches. The proof is measured twice: the walk provenClean runs
// (WebAssembly where the runtime has SIMD) and the JavaScript walk, in the same run.
import { demoDevices, page } from '../src/demo/data.ts';
import type { Condition } from '../src/pipeline/authorize.ts';
import { jsProvenClean, listScan, provenClean, scanEngine, scanFields } from '../src/pipeline/proving/clean-scan.ts';
import { PartsResponse } from '../src/pipeline/proving/parts.ts';
import { listCheck } from '../src/pipeline/proving/response-checks.ts';
import type { CompiledResource } from '../src/policy/model.ts';

const devices = { name: 'devices', fields: new Map([['referenceId', ['referenceId']]]) } as unknown as CompiledResource;
const alice: readonly Condition[] = Object.freeze([Object.freeze({ attribute: 'referenceId', values: Object.freeze(['alice']) })]);
const fields = scanFields(devices, alice)!;
const check = listCheck(devices, alice);

function median(f: () => unknown, bytes: number): number {
  const reps = Math.max(1, Math.floor(2e6 / bytes));
  const times: number[] = [];
  for (let r = 0; r < 61; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < reps; i++) f();
    times.push(Number(process.hrtime.bigint() - t0) / reps);
  }
  return times.sort((a, b) => a - b)[30]!;
}

for (const n of (process.argv[2] ?? '2,100,1000').split(',').map(Number)) {
  const body = Buffer.from(JSON.stringify(page(demoDevices(['alice'], n), 1, n)));
  const answer = { status: 200, headers: { 'content-type': 'application/json; charset=utf-8' }, body };
  if (!provenClean(body, fields, 'list', listScan)) throw new Error(`the ${n}-item list is not proven clean`);
  if (!jsProvenClean(body, fields, 'list', listScan)) throw new Error(`the ${n}-item list is not proven clean by the JavaScript walk`);
  const js = median(() => jsProvenClean(body, fields, 'list', listScan), body.length);
  const scan = median(() => provenClean(body, fields, 'list', listScan), body.length);
  const whole = median(() => check(answer), body.length);
  // As undici hands an answer over: in pieces of at most 64 KB, held unjoined.
  const pieces: Buffer[] = [];
  for (let at = 0; at < body.length; at += 65536) pieces.push(body.subarray(at, at + 65536));
  const held = pieces.length > 1 ? new PartsResponse(200, answer.headers, pieces, body.length) : answer;
  const inPieces = median(() => check(held), body.length);
  // What the pieces cost when joined first, as every answer was before pieces were kept.
  const joinedFirst = median(() => check({ ...answer, body: pieces.length > 1 ? Buffer.concat(pieces, body.length) : body }), body.length);
  const figures = (ns: number): string => `${(ns / body.length).toFixed(2)} ns/byte (${(ns / n / 1000).toFixed(3)} µs/item)`;
  process.stdout.write(
    `${String(n).padStart(5)} items, ${body.length} bytes: proof (${scanEngine}) ${figures(scan)}, proof (js) ${figures(js)}, whole check ${figures(whole)}, in ${pieces.length} piece(s) ${figures(inPieces)}, joined first ${figures(joinedFirst)}\n`,
  );
}
