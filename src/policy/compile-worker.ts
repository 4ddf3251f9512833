import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { compilePolicy, type PolicyText } from './compile.ts';
import { type CompileAnswer, detachMatcher } from './off-thread.ts';
import { PolicyLoadError } from './policy-error.ts';

// The compile of a reload, on its own thread (off-thread.ts starts it): the YAML parse
// and every check run here, so the event loop that serves requests only receives the
// result. At the lowest scheduling priority, for this thread alone (on Linux a nice value
// is a thread's, and pid 0 is the calling thread): where the cores are busy, the event
// loop serving requests goes first and the compile takes what is left.
try {
  setPriority(19);
} catch {
  // Not permitted here (or not per thread): the compile runs at the process's priority.
}
const { texts, displayRoot } = workerData as { texts: PolicyText[]; displayRoot: string | undefined };
let answer: CompileAnswer;
try {
  answer = { ok: true, policy: detachMatcher(compilePolicy(texts, displayRoot)) };
} catch (err) {
  answer =
    err instanceof PolicyLoadError ? { ok: false, issues: [...err.issues] } : { ok: false, issues: [{ file: displayRoot ?? '.', line: 1, col: 1, message: `policy compile failed: ${String(err)}` }] };
}
parentPort!.postMessage(answer);
