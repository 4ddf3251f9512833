import type { CommandSpec } from './commands.ts';
import type { OptionRow } from './option.ts';

/** `--listen HOST:PORT`, `--role ROLE…`, `--json`. */
function flagText(row: OptionRow): string {
  const base = `--${row.flag}`;
  if (row.kind === 'switch') return base;
  return `${base} ${row.placeholder}${row.kind === 'list' ? '…' : ''}`;
}

function defaultOf(row: OptionRow): string | undefined {
  if (row.required === true) return 'required';
  if (row.default !== undefined) return row.default;
  return row.defaultText;
}

function wrap(words: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of words.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

const HELP_ROW: OptionRow = { kind: 'switch', flag: 'help', short: 'h', description: 'print this help' };

/** What `keygate <command> --help` prints. */
export function helpText(spec: CommandSpec): string {
  const usage = `usage: keygate ${spec.name}${spec.args === '' ? '' : ' ' + spec.args} [options]`;
  const out = [usage, '', ...spec.about.flatMap((p) => [...wrap(p, 88), ''])];
  out.push('options:');
  for (const row of [...Object.values(spec.options), HELP_ROW]) {
    out.push(`  ${row.short === undefined ? '' : `-${row.short}, `}${flagText(row)}`);
    // Descriptions are written for the README (Markdown code spans); a terminal shows them plain.
    out.push(...wrap(row.description.replaceAll('`', ''), 80).map((l) => `        ${l}`));
    const fallback = defaultOf(row);
    const facts = [fallback === undefined || fallback === 'required' ? fallback : `default ${fallback}`, row.env === undefined ? undefined : `env ${row.env}`];
    if (facts.some((f) => f !== undefined)) out.push(`        ${facts.filter((f) => f !== undefined).join(', ')}`);
  }
  return out.join('\n') + '\n';
}

function cell(s: string): string {
  return s.replaceAll('|', '\\|');
}

/** The README's table for a command: the same rows, in Markdown. */
export function markdownTable(spec: CommandSpec): string {
  const rows = ['| flag | environment | default | meaning |', '|---|---|---|---|'];
  for (const row of Object.values(spec.options)) {
    const fallback = row.required === true ? '— (required)' : row.default !== undefined ? `\`${row.default}\`` : (row.defaultText ?? '—');
    rows.push(`| \`${cell(flagText(row))}\` | ${row.env === undefined ? '—' : `\`${row.env}\``} | ${cell(fallback)} | ${cell(row.description)} |`);
  }
  return rows.join('\n');
}
