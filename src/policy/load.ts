import { readFileSync } from 'node:fs';
import { compilePolicy, type PolicyText } from './compile.ts';
import type { CompiledPolicy } from './model.ts';
import { PolicyLoadError } from './policy-error.ts';
import { listPolicyFiles } from './source.ts';

/** The text of every policy file under `path` (a directory or one file), in load order. */
export function readPolicyTexts(path: string): PolicyText[] {
  let files: string[];
  try {
    files = listPolicyFiles(path);
  } catch (err) {
    throw new PolicyLoadError([{ file: path, line: 1, col: 1, message: `cannot read policies: ${(err as Error).message}` }]);
  }
  return files.map((file) => ({ file, text: readFileSync(file, 'utf8') }));
}

/** Reads every policy file under `path` (a directory or one file) and compiles them as one policy. */
export function loadPolicy(path: string): CompiledPolicy {
  return compilePolicy(readPolicyTexts(path));
}
