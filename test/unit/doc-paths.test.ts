// Every repository path the documentation cites exists, and every relative link and anchor
// resolves: a file that moves leaves no README line or docs/ page pointing at nothing.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/sidecar.ts';

const DOCS = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`),
];

/** Top folders of the repository whose paths the documentation cites (data/ holds only what Keygate writes at run time). */
const PATH = /(?<![\w./$~@:-])(?:\.\/)?((?:src|test|bench|policies|deploy|docs|bin)\/[\w.\-/*]*)/g;
const LINK = /!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g;
const CODE_SPAN = /(`+)([\s\S]*?[^`])\1(?!`)/g;

interface Cite {
  readonly file: string;
  readonly line: number;
  readonly target: string;
}

/** A path as cited, without what follows it in prose or in a `file:line:col` reference. */
function trimmed(path: string): string {
  return path.replace(/(:\d+)+$/, '').replace(/[.,;:]+$/, '');
}

/** Does the path exist? A `*` in its last part is a glob over the folder's entries. */
function exists(path: string): boolean {
  if (!path.includes('*')) return existsSync(join(ROOT, path));
  const dir = dirname(path);
  const last = path.slice(dir.length + 1);
  if (dir.includes('*') || !existsSync(join(ROOT, dir))) return false;
  const pattern = new RegExp(
    `^${last
      .split('*')
      .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
  return readdirSync(join(ROOT, dir)).some((name) => pattern.test(name));
}

/** The anchors GitHub gives a Markdown file's headings (lower case, punctuation dropped, spaces to hyphens, repeats numbered). */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of text.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    const h = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const plain = h[1]!.replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/[`*_~]/g, (c) => (c === '_' ? '_' : ''));
    const base = plain
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

function cites(file: string, text: string): { paths: Cite[]; links: Cite[] } {
  const paths: Cite[] = [];
  const links: Cite[] = [];
  let fenced = false;
  text.split('\n').forEach((line, i) => {
    const at = { file, line: i + 1 };
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      return;
    }
    // In a code block every path-like word is a citation (commands, the source tree); in prose, those in code spans.
    const spans = fenced ? [line] : [...line.matchAll(CODE_SPAN)].map((m) => m[2]!);
    for (const span of spans) for (const m of span.matchAll(PATH)) paths.push({ ...at, target: trimmed(m[1]!) });
    if (!fenced) for (const m of line.replace(CODE_SPAN, '').matchAll(LINK)) links.push({ ...at, target: m[1]! });
  });
  return { paths, links };
}

const found = DOCS.map((file) => ({ file, text: readFileSync(join(ROOT, file), 'utf8') }));
const headings = new Map(found.map(({ file, text }) => [file, anchors(text)]));
const all = found.map(({ file, text }) => cites(file, text));

describe('paths and links in README.md and docs/', () => {
  it('cites paths at all (the extraction works)', () => {
    const paths = all.flatMap((c) => c.paths.map((p) => p.target));
    expect(paths).toContain('src/config/commands.ts');
    expect(paths.length).toBeGreaterThan(50);
  });

  it('every cited repository path exists', () => {
    const missing = all.flatMap((c) => c.paths).filter((c) => !exists(c.target));
    expect(
      missing.map((c) => `${c.file}:${c.line}: ${c.target}`),
      'cited paths that do not exist',
    ).toEqual([]);
  });

  it('every relative link points at a file that exists, and every anchor at a heading of it', () => {
    const broken: string[] = [];
    for (const c of all.flatMap((x) => x.links)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(c.target)) continue; // https:, mailto:
      const [path, anchor] = c.target.split('#') as [string, string | undefined];
      const file = path === '' ? c.file : relative(ROOT, join(ROOT, dirname(c.file), decodeURIComponent(path)));
      if (!existsSync(join(ROOT, file))) broken.push(`${c.file}:${c.line}: ${c.target} (no file ${file})`);
      else if (anchor !== undefined && !headings.get(file)?.has(anchor)) {
        broken.push(`${c.file}:${c.line}: ${c.target} (${file} has no heading #${anchor})`);
      }
    }
    expect(broken, 'broken links').toEqual([]);
  });

  it('reads GitHub anchors as GitHub makes them', () => {
    expect([...anchors('# A\n## `keygate serve`\n### Browsers (CORS)\n## Roles, key types and conditions\n## A\n```\n# not a heading\n```\n')]).toEqual([
      'a',
      'keygate-serve',
      'browsers-cors',
      'roles-key-types-and-conditions',
      'a-1',
    ]);
  });
});
