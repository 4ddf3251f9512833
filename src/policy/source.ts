import { readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import type { PolicyIssue } from './policy-error.ts';
import { LineIndex, parseYaml, type YamlNode } from './yaml-tree.ts';

/** A parsed policy file and the means to turn a node back into `file:line:col`. */
export interface SourceFile {
  readonly file: string;
  /** The document's one node; null for an empty file. */
  readonly contents: YamlNode | null;
  readonly lines: LineIndex;
}

export interface Position {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

/** `file:line:col`, the one spelling of a position in every message (cerbos style). */
export function formatPosition(p: Position): string {
  return `${p.file}:${p.line}:${p.col}`;
}

export function positionOf(src: SourceFile, node: YamlNode | null | undefined): Position {
  const offset = node?.offset ?? 0;
  const { line, col } = src.lines.linePos(offset);
  return { file: src.file, line, col };
}

export function issueAt(src: SourceFile, node: YamlNode | null | undefined, message: string): PolicyIssue {
  return { ...positionOf(src, node), message };
}

/** Policy files are `*.yaml` / `*.yml` directly in the directory; `*.test.yaml` are policy tests. */
function isPolicyFile(name: string): boolean {
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
  const lines = new LineIndex(text);
  const parsed = parseYaml(text);
  const src: SourceFile = { file: isAbsolute(file) ? relative(displayRoot, file) || file : file, contents: parsed.contents, lines };
  const issues = parsed.errors.map((err): PolicyIssue => ({ file: src.file, ...lines.linePos(err.offset), message: `YAML: ${err.message}` }));
  return { src, issues };
}
