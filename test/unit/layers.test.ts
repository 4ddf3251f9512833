// Layers import one way. Every top folder of src/ has a row naming the folders it may
// import; an import across folders that its row does not name fails, and so does a folder
// with no row. The order, top to bottom (docs/architecture.md draws it and copies the table):
//
//   cli → {demo, server} → {admin, connect, cors} → {verify, config} → limits → pipeline → policy
//       → observability → keys → errors → util
//
// Why each sits where it does:
// - verify (policy tests, explain) runs requests through the pipeline without the network,
//   so it sits over the pipeline; nothing but the CLI uses it.
// - config parses flags and the environment into typed settings and checks each value with
//   the parser of the layer that owns it (key types, origin rules and store URLs from keys,
//   admission shares and upstream defaults from the pipeline, durations from policy), so it
//   sits over those; the server and connect consume its settings, so it sits under them.
//   Settings whose consumer is the server (connection deadlines) are declared in config.
// - observability sits under policy (the reload counts into its metrics) and over keys (the
//   metrics read the key cache's counters).
// - demo (the demo device API and app page) imports nothing of Keygate's: it stands in for
//   a backend that knows nothing of the sidecar in front of it.
// - policy and config have their own error types (PolicyError, ConfigError), so neither
//   imports errors/, the catalogue of what clients are answered.
// - limits (rate limiting) runs between authorize and the rest of the pipeline, reading the
//   policy's rateLimits and the trusted hops of the pipeline's forwarding; config checks
//   --rate-limit-store with its parser, and the server builds its counters.
// - util holds what has no Keygate concept in it (MaybePromise, PairMemo, node:http loaded
//   as CommonJS).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/sidecar.ts';

const SRC = join(ROOT, 'src');

/**
 * The folders each top folder of src/ may import (besides itself): the edges in use, each
 * pointing down the order above. A new edge is a decision: add it here only if it points down.
 */
const ALLOWED: Record<string, readonly string[]> = {
  cli: ['demo', 'server', 'config', 'verify', 'policy', 'observability', 'keys', 'util'],
  demo: [],
  server: ['admin', 'connect', 'cors', 'config', 'limits', 'pipeline', 'policy', 'observability', 'keys', 'errors', 'util'],
  admin: ['pipeline', 'policy', 'keys', 'errors'],
  connect: ['config', 'pipeline', 'policy', 'keys', 'errors', 'util'],
  cors: ['keys', 'errors'],
  verify: ['pipeline', 'policy', 'keys', 'errors'],
  config: ['limits', 'pipeline', 'policy', 'keys'],
  limits: ['pipeline', 'policy', 'keys', 'errors'],
  pipeline: ['policy', 'keys', 'errors', 'util'],
  policy: ['observability', 'keys'],
  observability: ['keys'],
  keys: ['errors', 'util'],
  errors: [],
  util: [],
};

/** Files outside src/ that src/ may import, by the folder that imports them. */
const OUTSIDE: Record<string, readonly string[]> = {
  cli: ['package.json', 'policies/texture.yaml'],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : /\.[cm]?[jt]s$/.test(path) ? [path] : [];
  });
}

/**
 * Every relative specifier in a file: `import … from`, `export … from`, a bare `import '…'`,
 * `import('…')`, and `new URL('…', import.meta.url)` (how a worker or an asset is named).
 * A template literal counts up to its first `${`.
 */
function relativeSpecifiers(text: string): string[] {
  const out: string[] = [];
  const quoted = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s*|\bnew\s+URL\(\s*)(['"`])(\.{1,2}\/[^'"`$]*)/gm;
  for (const m of text.matchAll(quoted)) out.push(m[2]!);
  return out;
}

const topOf = (path: string): string => path.split(sep)[0]!;

interface Edge {
  readonly file: string;
  readonly target: string;
}

function crossEdges(): Edge[] {
  const edges: Edge[] = [];
  for (const file of files(SRC)) {
    for (const spec of relativeSpecifiers(readFileSync(file, 'utf8'))) {
      const target = relative(SRC, join(dirname(file), spec));
      const from = relative(SRC, file);
      if (topOf(target) !== topOf(from)) edges.push({ file: from, target });
    }
  }
  return edges;
}

describe('import layers', () => {
  it('finds every form of relative specifier it claims to', () => {
    const text = [
      "import { a } from './a.ts';",
      "import type { B } from '../b/b.ts';",
      "export { c } from '../c/c.ts';",
      "import '../d/side.ts';",
      "const e = await import('../e/e.ts');",
      "const W = new URL('../f/worker.ts', import.meta.url);",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: source text for the parser, not a template
      'const g = new URL(`./static/${name}`, import.meta.url);',
      "const h = new URL('https://example.com/');",
    ].join('\n');
    expect(relativeSpecifiers(text)).toEqual(['./a.ts', '../b/b.ts', '../c/c.ts', '../d/side.ts', '../e/e.ts', '../f/worker.ts', './static/']);
  });

  it('every top folder of src/ has a row, and every row is a folder', () => {
    const tops = readdirSync(SRC).map((name) => (statSync(join(SRC, name)).isDirectory() ? name : `${name} (a file at the top of src/)`));
    expect(tops.filter((t) => !(t in ALLOWED))).toEqual([]);
    expect(Object.keys(ALLOWED).filter((t) => !tops.includes(t))).toEqual([]);
  });

  it('the allowed edges have no cycle', () => {
    const done = new Set<string>();
    const path: string[] = [];
    const cycles: string[] = [];
    const visit = (layer: string): void => {
      if (path.includes(layer)) return void cycles.push([...path.slice(path.indexOf(layer)), layer].join(' → '));
      if (done.has(layer)) return;
      path.push(layer);
      for (const next of ALLOWED[layer] ?? []) visit(next);
      path.pop();
      done.add(layer);
    };
    for (const layer of Object.keys(ALLOWED)) visit(layer);
    expect(cycles).toEqual([]);
  });

  it("docs/architecture.md's table is this table", () => {
    const doc = readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8');
    const rows = [...doc.matchAll(/^\| `([a-z]+)` \| ([^|]+) \|$/gm)].map((m) => [m[1]!, m[2]!.trim() === '(nothing)' ? [] : m[2]!.trim().split(', ')] as const);
    expect(Object.fromEntries(rows)).toEqual(ALLOWED);
  });

  it('every import across folders is an allowed edge', () => {
    const edges = crossEdges();
    expect(edges.length).toBeGreaterThan(100);
    const refused = edges
      .filter(({ file, target }) => {
        const from = topOf(file);
        if (target.startsWith('..')) return !(OUTSIDE[from] ?? []).includes(relative(ROOT, join(SRC, target)));
        return !(ALLOWED[from] ?? []).includes(topOf(target));
      })
      .map(({ file, target }) => `${file} imports ${target}`);
    expect(refused).toEqual([]);
  });
});
