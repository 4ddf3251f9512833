import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { ROOT } from './targets.ts';

/** A limit no bench run reaches (a billion a second), so scenario 8 measures counting, never refusing. */
const NEVER_REACHED = { limit: 1_000_000_000, window: '1s' };

/**
 * The shipped policy with one more rate limit, on one key (`keys.<id>`): scenario 8's key
 * is counted and gets the RateLimit fields; every other scenario runs on the shipped
 * rules as they are. Written under `dir`; returns the directory to pass as --policies.
 */
export function rateLimitedPolicy(dir: string, keyId: string): string {
  const doc = parseDocument(readFileSync(join(ROOT, 'policies/texture.yaml'), 'utf8'));
  doc.setIn(['rateLimits', 'keys', keyId], NEVER_REACHED);
  const out = join(dir, 'policies');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'texture.yaml'), String(doc));
  return out;
}
