import { formatPosition } from './source.ts';

/** One problem in a policy file, printed `file:line:col message` (cerbos style). */
export interface PolicyIssue {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly message: string;
}

export function formatIssue(issue: PolicyIssue): string {
  return `${formatPosition(issue)} ${issue.message}`;
}

/** Thrown when policies cannot be loaded; carries every issue found, not just the first. */
export class PolicyLoadError extends Error {
  readonly issues: readonly PolicyIssue[];

  constructor(issues: readonly PolicyIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'PolicyLoadError';
    this.issues = issues;
  }
}
