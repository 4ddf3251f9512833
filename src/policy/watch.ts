import { type FSWatcher, statSync, watch } from 'node:fs';
import type { Logger } from 'pino';
import type { Metrics } from '../observability/metrics.ts';
import type { PolicyText } from './compile.ts';
import { readPolicyTexts } from './load.ts';
import { compileOffThread } from './off-thread.ts';
import { type PolicyIssue, PolicyLoadError } from './policy-error.ts';
import type { PolicyHolder } from './policy-holder.ts';

const DEBOUNCE_MS = 150;
/**
 * Policy files are compiled only once two reads this far apart found the same bytes. A file
 * rewritten in place is empty or half-written between its writes, and a half-written file
 * can be a valid policy (a role cut before its `conditions:` grants more, not less).
 */
export const SETTLE_MS = 500;
/** A file still changing after this many settle rounds is left alone until its next change. */
const MAX_SETTLE_ROUNDS = 20;

type Read = { readonly texts: PolicyText[] } | { readonly issues: readonly PolicyIssue[] };

function readNow(path: string): Read {
  try {
    return { texts: readPolicyTexts(path) };
  } catch (err) {
    return { issues: err instanceof PolicyLoadError ? err.issues : [{ file: path, line: 1, col: 1, message: String(err) }] };
  }
}

function sameRead(a: Read, b: Read): boolean {
  if ('texts' in a && 'texts' in b) {
    return a.texts.length === b.texts.length && a.texts.every((t, i) => t.file === b.texts[i]!.file && t.text === b.texts[i]!.text);
  }
  return 'issues' in a && 'issues' in b && JSON.stringify(a.issues) === JSON.stringify(b.issues);
}

/**
 * Reload = read until stable, validate and compile on a worker thread, swap. Requests
 * that arrive while a reload runs are folded into one more run after it. The content hash decides whether anything
 * changed, so an editor's several writes or a Kubernetes ConfigMap update (a new `..2024_…`
 * directory, then an atomic rename of the `..data` symlink) reload at most once per
 * change, and the real files behind the symlinks are read once (only `*.yaml` directly in
 * the directory).
 */
export class PolicyReloader {
  readonly #path: string;
  readonly #holder: PolicyHolder;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  #running = false;
  #again: string | null = null;
  #closed = false;
  #timer: NodeJS.Timeout | null = null;
  #wake: (() => void) | null = null;
  #cancelCompile: (() => void) | null = null;

  constructor(path: string, holder: PolicyHolder, logger: Logger, metrics: Metrics) {
    this.#path = path;
    this.#holder = holder;
    this.#logger = logger;
    this.#metrics = metrics;
  }

  /** Reloads soon (SIGHUP, a file event); never throws, reports through logs, metrics and /readyz. */
  request(reason: string): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = reason;
      return;
    }
    this.#running = true;
    void this.#run(reason).finally(() => {
      this.#running = false;
      const again = this.#again;
      this.#again = null;
      if (again !== null) this.request(again);
    });
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#wake?.();
    this.#cancelCompile?.();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#timer = setTimeout(resolve, ms);
      this.#timer.unref();
    });
  }

  async #run(reason: string): Promise<void> {
    let read = readNow(this.#path);
    for (let round = 0; ; round++) {
      await this.#sleep(SETTLE_MS);
      if (this.#closed) return;
      const next = readNow(this.#path);
      if (sameRead(read, next)) break;
      read = next;
      if (round + 1 >= MAX_SETTLE_ROUNDS) {
        this.#logger.warn({ reason, settleMs: SETTLE_MS, rounds: MAX_SETTLE_ROUNDS }, 'policy files still changing; not reloaded until they stop');
        return;
      }
    }
    await this.#apply(read, reason);
  }

  /** Compiles on a worker thread (off-thread.ts): requests keep being served meanwhile, by the policy in force. */
  async #apply(read: Read, reason: string): Promise<void> {
    try {
      if ('issues' in read) throw new PolicyLoadError([...read.issues]);
      const compile = compileOffThread(read.texts);
      this.#cancelCompile = compile.cancel;
      const started = performance.now();
      const next = await compile.result.finally(() => {
        this.#cancelCompile = null;
      });
      if (this.#closed) return;
      if (next.version === this.#holder.current.version) {
        // Nothing to swap, but a failed reload before this one (a broken edit, now rolled
        // back) must not stay on /readyz as the last word.
        if (this.#holder.lastReload?.ok === false) {
          this.#holder.unchanged();
          this.#logger.info({ reason, version: next.version }, 'policy files are back to the policy in force');
        }
        return;
      }
      this.#holder.swap(next);
      this.#metrics.reloads.labels('success').inc();
      this.#metrics.policyInfo.reset();
      this.#metrics.policyInfo.labels(next.version).set(1);
      this.#logger.info({ reason, version: next.version, files: next.files, compileMs: Math.round(performance.now() - started) }, 'policy reloaded');
    } catch (err) {
      if (this.#closed) return;
      const issues = err instanceof PolicyLoadError ? err.issues : [{ file: this.#path, line: 1, col: 1, message: String(err) }];
      this.#holder.rejected(issues);
      this.#metrics.reloads.labels('failure').inc();
      this.#logger.error({ reason, errors: issues.map((i) => `${i.file}:${i.line}:${i.col} ${i.message}`), kept: this.#holder.current.version }, 'policy reload failed; keeping the last good policy');
    }
  }
}

export function watchPolicies(path: string, onChange: () => void): FSWatcher | null {
  let timer: NodeJS.Timeout | null = null;
  const dir = statSync(path).isDirectory() ? path : null;
  try {
    const watcher = watch(dir ?? path, { persistent: false }, () => {
      if (timer !== null) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = null;
        onChange();
      }, DEBOUNCE_MS);
    });
    return watcher;
  } catch {
    return null;
  }
}
