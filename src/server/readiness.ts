import type { KeyStore } from '../keys/store.ts';
import type { PolicyHolder } from '../policy/policy-holder.ts';

/** What /readyz answers: 200 with `body` when `ready`, else 503 with it. */
export interface ReadinessReport {
  readonly ready: boolean;
  readonly body: Readonly<Record<string, unknown>>;
}

export interface ReadinessDeps {
  readonly policy: PolicyHolder;
  readonly store: KeyStore;
  readonly isDraining: () => boolean;
}

/**
 * Ready means a request would be served: a policy is loaded (start-up refuses to run
 * without one, and a failed reload keeps the last good one), the store answers a real
 * lookup (KeyStore.ping: the keys table and its index, not `SELECT 1`; a SQLite file
 * missing or unusable at its path says so), and the process is not draining.
 */
export async function checkReadiness(deps: ReadinessDeps): Promise<ReadinessReport> {
  const policy = deps.policy.current;
  const reload = deps.policy.lastReload;
  const store = await deps.store.ping().then(
    () => ({ ok: true as const }),
    (err: unknown) => ({ ok: false as const, error: err instanceof Error ? err.message : String(err) }),
  );
  const draining = deps.isDraining();
  const ready = store.ok && !draining;
  return {
    ready,
    body: {
      status: ready ? 'ready' : 'not ready',
      draining,
      policy: { version: policy.version, loadedAt: policy.loadedAt, files: policy.files, lastReload: reload },
      store: { kind: deps.store.kind, ...store },
    },
  };
}
