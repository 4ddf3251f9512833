import { Worker } from 'node:worker_threads';
import type { PolicyText } from './compile.ts';
import { RouteMatcher } from './matcher.ts';
import type { CompiledPolicy, CompiledRoute } from './model.ts';
import { type PolicyIssue, PolicyLoadError } from './policy-error.ts';

/**
 * A reload compiles on a worker thread: at 10,000 routes the compile takes a third of a
 * second to seconds, and on the event loop every request would wait that long. What comes
 * back is the compiled policy itself, copied by the structured clone (Maps, Sets, shared
 * and cyclic references survive; object identity within the policy too, so a lookup
 * route's `enforcement.resource` is still its resource). The route matcher is a class
 * with private state, which a clone cannot carry: it is rebuilt here from the routes, in
 * the order the compiler added them, in linear time and without a check to repeat (the
 * worker's compile refused any conflict).
 *
 * The main thread's share is receiving the clone and that rebuild: about a tenth of the
 * compile (docs/performance.md).
 */
export type CompileAnswer = { readonly ok: true; readonly policy: Omit<CompiledPolicy, 'matcher'> } | { readonly ok: false; readonly issues: PolicyIssue[] };

/** The policy without its matcher, for the clone (compile-worker.ts). */
export function detachMatcher(policy: CompiledPolicy): Omit<CompiledPolicy, 'matcher'> {
  const { matcher: _, ...rest } = policy;
  return rest;
}

/** The matcher of a cloned policy: every route of every resource, as compilePolicy added them. */
function attachMatcher(policy: Omit<CompiledPolicy, 'matcher'>): CompiledPolicy {
  const matcher = new RouteMatcher<CompiledRoute>();
  for (const resource of policy.resources.values()) {
    for (const routes of resource.actions.values()) for (const route of routes) matcher.add(route.template, route);
  }
  return { ...policy, matcher };
}

const WORKER = new URL('./compile-worker.ts', import.meta.url);

/** compilePolicy on a worker thread; rejects with PolicyLoadError as compilePolicy throws it. */
export function compileOffThread(texts: readonly PolicyText[], displayRoot?: string): { result: Promise<CompiledPolicy>; cancel(): void } {
  const worker = new Worker(WORKER, { workerData: { texts, displayRoot } });
  const result = new Promise<CompiledPolicy>((resolve, reject) => {
    let answered = false;
    worker.once('message', (answer: CompileAnswer) => {
      answered = true;
      void worker.terminate();
      // Taking in the clone was one stretch of the event loop; the matcher rebuild is
      // another, after the requests that arrived meanwhile have had their turn.
      if (answer.ok) setImmediate(() => resolve(attachMatcher(answer.policy)));
      else reject(new PolicyLoadError(answer.issues));
    });
    worker.once('error', (err) => {
      answered = true;
      reject(err);
    });
    worker.once('exit', (code) => {
      if (!answered) reject(new Error(`policy compile worker exited with ${code} before answering`));
    });
  });
  return { result, cancel: () => void worker.terminate() };
}
