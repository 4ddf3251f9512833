import type { CompiledPolicy } from './model.ts';
import { formatIssue, type PolicyIssue } from './policy-error.ts';

export interface ReloadStatus {
  readonly ok: boolean;
  readonly at: string;
  readonly errors: readonly string[];
}

/**
 * The policy in force. A request reads `current` once and keeps that object, so a swap
 * never changes the rules under a request in flight; a failed reload leaves it alone
 * (invariant 8).
 */
export class PolicyHolder {
  #current: CompiledPolicy;
  #lastReload: ReloadStatus | null = null;

  constructor(initial: CompiledPolicy) {
    this.#current = initial;
  }

  get current(): CompiledPolicy {
    return this.#current;
  }

  get lastReload(): ReloadStatus | null {
    return this.#lastReload;
  }

  swap(next: CompiledPolicy): void {
    this.#current = next;
    this.#lastReload = { ok: true, at: new Date().toISOString(), errors: [] };
  }

  /** A reload found the files back at the policy in force (a broken edit rolled back): the failure is over. */
  unchanged(): void {
    this.#lastReload = { ok: true, at: new Date().toISOString(), errors: [] };
  }

  rejected(issues: readonly PolicyIssue[]): void {
    this.#lastReload = { ok: false, at: new Date().toISOString(), errors: issues.map(formatIssue) };
  }
}
