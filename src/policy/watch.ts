import { type FSWatcher, realpathSync, statSync, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Metrics } from '../observability/metrics.ts';
import type { PolicyText } from './compile.ts';
import { connectWarnings } from './connect-section.ts';
import { readPolicyTexts } from './load.ts';
import { compileOffThread } from './off-thread.ts';
import { type PolicyIssue, PolicyLoadError } from './policy-error.ts';
import type { PolicyHolder } from './policy-holder.ts';
import { listPolicyFiles } from './source.ts';

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
      for (const w of connectWarnings(next.connect)) this.#logger.warn({ version: next.version }, w);
    } catch (err) {
      if (this.#closed) return;
      const issues = err instanceof PolicyLoadError ? err.issues : [{ file: this.#path, line: 1, col: 1, message: String(err) }];
      this.#holder.rejected(issues);
      this.#metrics.reloads.labels('failure').inc();
      this.#logger.error({ reason, errors: issues.map((i) => `${i.file}:${i.line}:${i.col} ${i.message}`), kept: this.#holder.current.version }, 'policy reload failed; keeping the last good policy');
    }
  }
}

/** How often the policy files' identities are compared, whatever the file events said. */
const POLL_MS = 2_000;

/**
 * What the files under `path` are, without reading them: each one's real path, inode, size
 * and modification time (a rename over a file, a symlink swapped to another release, an
 * edit in place each change it).
 */
function signature(path: string): string {
  try {
    const parts: string[] = [realpathSync(path)];
    for (const file of listPolicyFiles(path)) {
      const st = statSync(file);
      parts.push(`${realpathSync(file)}:${st.ino}:${st.size}:${st.mtimeMs}`);
    }
    return parts.join('\n');
  } catch (err) {
    return `unreadable: ${(err as Error).message}`;
  }
}

/** The watcher of one policy path; close() stops it. */
export interface PolicyWatch {
  close(): void;
}

/**
 * Calls `onChange` (debounced) when the policy files may have changed. File events are only
 * the fast path: `fs.watch` follows the inode it started on, so a file replaced by a rename
 * (how editors and `mv` save), or a directory symlink swapped to another release, goes
 * silent after its first event. So the parent directory is watched too (for the path's own
 * name), the directory watch follows the path's real target, and every POLL_MS the files'
 * identities are compared — a change no event reported is reloaded within that time.
 */
export function watchPolicies(path: string, onChange: () => void): PolicyWatch {
  let timer: NodeJS.Timeout | null = null;
  const changed = (): void => {
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      onChange();
    }, DEBOUNCE_MS);
    timer.unref();
  };
  const name = basename(path);
  const tryWatch = (target: string, onEvent: (file: string | null) => void): FSWatcher | null => {
    try {
      const w = watch(target, { persistent: false }, (_event, file) => onEvent(file === null ? null : String(file)));
      w.on('error', () => w.close());
      return w;
    } catch {
      return null;
    }
  };
  const parent = tryWatch(dirname(resolve(path)), (file) => {
    if (file === null || file === name) {
      rearm();
      changed();
    }
  });
  let target = '';
  let inside: FSWatcher | null = null;
  const rearm = (): void => {
    let real: string;
    try {
      real = realpathSync(path);
      if (!statSync(real).isDirectory()) return;
    } catch {
      return;
    }
    if (real === target && inside !== null) return;
    inside?.close();
    target = real;
    inside = tryWatch(real, changed);
  };
  rearm();
  let last = signature(path);
  const poll = setInterval(() => {
    const now = signature(path);
    if (now === last) return;
    last = now;
    rearm();
    changed();
  }, POLL_MS);
  poll.unref();
  return {
    close(): void {
      clearInterval(poll);
      if (timer !== null) clearTimeout(timer);
      parent?.close();
      inside?.close();
    },
  };
}
