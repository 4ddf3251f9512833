import { readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import type { PolicyIssue } from './policy-error.ts';

/** A parsed policy file and the means to turn a node back into `file:line:col`. */
export interface SourceFile {
  readonly file: string;
  readonly doc: Document.Parsed;
  readonly lines: LineCounter;
}

export interface Position {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

export function positionOf(src: SourceFile, node: YamlNode | null | undefined): Position {
  const offset = node?.range?.[0] ?? 0;
  const { line, col } = src.lines.linePos(offset);
  return { file: src.file, line, col };
}

export function issueAt(src: SourceFile, node: YamlNode | null | undefined, message: string): PolicyIssue {
  return { ...positionOf(src, node), message };
}

/** Policy files are `*.yaml` / `*.yml` directly in the directory; `*.test.yaml` are policy tests. */
export function isPolicyFile(name: string): boolean {
  return /\.ya?ml$/.test(name) && !/\.test\.ya?ml$/.test(name);
}

export function listPolicyFiles(path: string): string[] {
  const st = statSync(path);
  if (st.isFile()) return [path];
  return readdirSync(path)
    .filter(isPolicyFile)
    .sort()
    .map((name) => join(path, name));
}

export function parseSource(file: string, text: string, displayRoot = process.cwd()): { src: SourceFile; issues: PolicyIssue[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const src: SourceFile = { file: isAbsolute(file) ? relative(displayRoot, file) || file : file, doc, lines };
  const issues: PolicyIssue[] = [];
  for (const err of doc.errors) {
    const { line, col } = lines.linePos(err.pos[0]);
    issues.push({ file: src.file, line, col, message: `YAML: ${err.message.split('\n')[0]}` });
  }
  return { src, issues };
}

export function readSource(file: string): { src: SourceFile; issues: PolicyIssue[] } {
  return parseSource(file, readFileSync(file, 'utf8'));
}
