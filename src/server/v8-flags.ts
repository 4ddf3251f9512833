import { setFlagsFromString } from 'node:v8';

/**
 * V8 settings Keygate sets on itself at start-up (bin/keygate.js), rather than on Node's
 * command line: a flag V8 does not know stops `node` before Keygate can say anything, and
 * these are read by V8 each time it decides, so setting them in the process works.
 *
 * `--external-memory-accounted-in-global-limit`: every answer Keygate relays arrives in
 * socket buffers outside V8's heap (64 KB each). By default V8 starts a full collection
 * whenever such external memory has grown by a fixed 64 MB since the last one, although
 * those buffers die young and the young-generation collections free them anyway. Relaying
 * 313 KB device pages that meant a full collection every ~100 answers: a mark of the whole
 * heap (15–25 ms on the main thread, more on the helper threads) several times a second.
 * With the flag, external memory counts towards the one limit V8 sets for the heap, which
 * grows with what is live, so full collections run about half as often: in one
 * interleaved run 1,000-item pages went 1,581 → 1,876 answers per 3 s and 1,889 → 1,398 µs
 * of CPU per answer, for about 70 MB more RSS at the height of that load (garbage held a
 * little longer; MemorySettle still returns it once traffic stops). docs/performance.md
 * has the runs.
 */
const RUNTIME_V8_FLAGS: readonly string[] = ['--external-memory-accounted-in-global-limit'];

export function applyRuntimeV8Flags(): void {
  for (const flag of RUNTIME_V8_FLAGS) setFlagsFromString(flag);
}
