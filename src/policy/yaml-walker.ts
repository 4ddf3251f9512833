import type { PolicyIssue } from './policy-error.ts';
import { issueAt, type Position, positionOf, type SourceFile } from './source.ts';
import { isMap, isScalar, isSeq, type YamlNode } from './yaml-tree.ts';

export interface Entry {
  readonly key: string;
  readonly keyNode: YamlNode;
  readonly value: YamlNode | null;
}

/** Reads a YAML AST while recording every problem with its position (never throws). */
export class YamlWalker {
  readonly src: SourceFile;
  readonly issues: PolicyIssue[];

  constructor(src: SourceFile, issues: PolicyIssue[]) {
    this.src = src;
    this.issues = issues;
  }

  fail(node: YamlNode | null | undefined, message: string): void {
    this.issues.push(issueAt(this.src, node, message));
  }

  pos(node: YamlNode | null | undefined): Position {
    return positionOf(this.src, node);
  }

  /** Entries of a mapping; unknown keys are reported when `allowed` is given. */
  entries(node: YamlNode | null, what: string, allowed?: readonly string[]): Entry[] {
    if (node === null) return [];
    if (!isMap(node)) {
      this.fail(node, `${what} must be a mapping`);
      return [];
    }
    const out: Entry[] = [];
    for (const pair of node.items) {
      const keyNode = pair.key;
      if (!isScalar(keyNode) || typeof keyNode.value !== 'string') {
        this.fail(keyNode, `${what}: keys must be strings`);
        continue;
      }
      if (allowed !== undefined && !allowed.includes(keyNode.value)) {
        this.fail(keyNode, `${what}: unknown field "${keyNode.value}" (allowed: ${allowed.join(', ')})`);
        continue;
      }
      out.push({ key: keyNode.value, keyNode, value: pair.value });
    }
    return out;
  }

  string(node: YamlNode | null, what: string, at?: YamlNode): string | undefined {
    if (isScalar(node) && typeof node.value === 'string' && node.value !== '') return node.value;
    this.fail(node ?? at, `${what} must be a non-empty string`);
    return undefined;
  }

  /** A sequence, or a single item standing for a one-element sequence. */
  items(node: YamlNode | null, what: string, at?: YamlNode): YamlNode[] {
    if (isSeq(node)) {
      if (node.items.length === 0) this.fail(node, `${what} must not be empty`);
      return node.items as YamlNode[];
    }
    if (node === null) {
      this.fail(at, `${what} is empty`);
      return [];
    }
    return [node];
  }

  strings(node: YamlNode | null, what: string, at?: YamlNode): Array<{ value: string; node: YamlNode }> {
    const out: Array<{ value: string; node: YamlNode }> = [];
    for (const item of this.items(node, what, at)) {
      const value = this.string(item, `${what} entry`);
      if (value !== undefined) out.push({ value, node: item });
    }
    return out;
  }
}

export function scalarValue(node: YamlNode | null): unknown {
  return isScalar(node) ? node.value : undefined;
}
