import { watch, type FSWatcher } from 'node:fs';
import { statSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Metrics } from '../observability/metrics.ts';
import { loadPolicy } from './load.ts';
import { PolicyLoadError } from './policy-error.ts';
import type { PolicyHolder } from './policy-holder.ts';

const DEBOUNCE_MS = 150;

/**
 * Reload = validate, compile, swap. The content hash decides whether anything changed, so
 * an editor's several writes or a Kubernetes ConfigMap update (a new `..2024_…` directory,
 * then an atomic rename of the `..data` symlink) reload at most once per change, and the
 * real files behind the symlinks are read once (only `*.yaml` directly in the directory).
 */
export function reloadPolicy(path: string, holder: PolicyHolder, logger: Logger, metrics: Metrics, reason: string): boolean {
  try {
    const next = loadPolicy(path);
    if (next.version === holder.current.version) return false;
    holder.swap(next);
    metrics.reloads.labels('success').inc();
    metrics.policyInfo.reset();
    metrics.policyInfo.labels(next.version).set(1);
    logger.info({ reason, version: next.version, files: next.files }, 'policy reloaded');
    return true;
  } catch (err) {
    const issues = err instanceof PolicyLoadError ? err.issues : [{ file: path, line: 1, col: 1, message: String(err) }];
    holder.rejected(issues);
    metrics.reloads.labels('failure').inc();
    logger.error({ reason, errors: issues.map((i) => `${i.file}:${i.line}:${i.col} ${i.message}`), kept: holder.current.version }, 'policy reload failed; keeping the last good policy');
    return false;
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
