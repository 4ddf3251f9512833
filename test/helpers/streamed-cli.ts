import { spawn } from 'node:child_process';
import { BIN, ROOT } from './sidecar.ts';

interface Streamed {
  code: number | null;
  lines: number;
  first: string;
  last: string;
  stderr: string;
}

/**
 * Runs the CLI with a small heap and counts its output lines as they stream, keeping only
 * the first and the last: a million lines are never held, here or (with the heap cap) there.
 */
export function streamed(args: string[], heapMb: number): Promise<Streamed> {
  const child = spawn(process.execPath, [`--max-old-space-size=${heapMb}`, BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let lines = 0;
  let first = '';
  let tail = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    if (lines === 0 && first === '') first = chunk.slice(0, chunk.indexOf('\n'));
    for (let i = chunk.indexOf('\n'); i !== -1; i = chunk.indexOf('\n', i + 1)) lines++;
    tail = (tail + chunk).slice(-4096);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => {
    child.on('close', (code) => {
      const rows = tail.trimEnd().split('\n');
      resolve({ code, lines, first, last: rows[rows.length - 1]!, stderr });
    });
  });
}
