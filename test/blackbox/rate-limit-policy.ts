import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { POLICIES } from './harness.ts';

/** The shipped texture.yaml with its `rateLimits:` replaced by `limits` (or removed: null), in a directory of its own. */
export function policyWithLimits(limits: unknown): string {
  const doc = parseDocument(readFileSync(join(POLICIES, 'texture.yaml'), 'utf8'));
  if (limits === null) doc.delete('rateLimits');
  else doc.set('rateLimits', limits);
  const dir = mkdtempSync(join(tmpdir(), 'keygate-rl-policy-'));
  writeFileSync(join(dir, 'texture.yaml'), String(doc));
  return dir;
}
