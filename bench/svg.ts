import type { BenchReport } from './report.ts';

const escapeXml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const COLOURS = { baseline: '#8a94a6', forward: '#2b6cb0', reject: '#dd6b20' } as const;

/**
 * Horizontal bars of req/s (medians), one per target, with the ratio to the bare undici
 * forwarder and a dashed line at 0.9× of it (scenario 2's target). Plain SVG text so the
 * chart renders in a browser or a GitHub diff without any dependency.
 */
export function barChart(report: BenchReport): string {
  const rows = report.results;
  const labelW = 230;
  const barW = 520;
  const valueW = 170;
  const rowH = 26;
  const top = 58;
  const width = labelW + barW + valueW;
  const targetsTop = top + rows.length * rowH + 40;
  const height = targetsTop + report.targets.length * 18 + 36;
  const max = Math.max(1, ...rows.map((r) => r.median.rps));
  const x = (v: number): number => labelW + (v / max) * barW;
  const undici = rows.find((r) => r.id === 'undici')?.median.rps;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="13">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(
    `<text x="12" y="22" font-size="16" font-weight="bold">Keygate bench: requests/s (median of ${report.options.rounds} × ${report.options.duration} s, ${report.options.connections} connections)</text>`,
  );
  parts.push(
    `<text x="12" y="42" fill="#555">${escapeXml(`${report.finishedAt} · ${report.machine.cpus} CPU ${report.machine.model} · Node ${report.machine.node} · Keygate workers ${report.options.workers}`)}</text>`,
  );
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    const colour = r.kind === 'baseline' ? COLOURS.baseline : r.median.rps > 0 && r.expectStatus >= 400 ? COLOURS.reject : COLOURS.forward;
    const ratio = r.ratioToUndici === undefined ? '' : ` (${r.ratioToUndici.rps.toFixed(2)}×)`;
    const errors = r.errors > 0 ? ` · ${r.errors} errors` : '';
    parts.push(`<text x="${labelW - 8}" y="${y + 17}" text-anchor="end">${escapeXml(r.label)}</text>`);
    parts.push(`<rect x="${labelW}" y="${y + 4}" width="${Math.max(1, x(r.median.rps) - labelW).toFixed(1)}" height="${rowH - 8}" fill="${colour}"/>`);
    parts.push(
      `<text x="${(x(r.median.rps) + 6).toFixed(1)}" y="${y + 17}" fill="${r.errors > 0 ? '#c53030' : '#222'}">${escapeXml(`${Math.round(r.median.rps).toLocaleString('en-US')}${ratio}${errors}`)}</text>`,
    );
  });
  if (undici !== undefined) {
    const gx = x(undici * 0.9).toFixed(1);
    parts.push(`<line x1="${gx}" y1="${top - 4}" x2="${gx}" y2="${top + rows.length * rowH}" stroke="#c53030" stroke-dasharray="4 3"/>`);
    parts.push(`<text x="${gx}" y="${top + rows.length * rowH + 16}" text-anchor="middle" fill="#c53030" font-size="11">0.9× undici</text>`);
  }
  report.targets.forEach((t, i) => {
    const verdict = t.pass === null ? 'N/A' : t.pass ? 'PASS' : 'MISS';
    const value = t.value === null ? 'not measured' : t.id === 's7-store-queries' ? String(t.value) : `${t.value.toFixed(2)}×`;
    const colour = t.pass === null ? '#555' : t.pass ? '#2f855a' : '#c53030';
    parts.push(`<text x="12" y="${targetsTop + i * 18}" font-size="12" fill="${colour}">${escapeXml(`${verdict}  ${t.description}: ${value} (target ${t.threshold})`)}</text>`);
  });
  const legendY = height - 10;
  let lx = 12;
  for (const [name, colour] of [
    ['baseline (no policy)', COLOURS.baseline],
    ['Keygate forwarded', COLOURS.forward],
    ['Keygate rejected (401/403)', COLOURS.reject],
  ] as const) {
    parts.push(`<rect x="${lx}" y="${legendY - 10}" width="12" height="12" fill="${colour}"/><text x="${lx + 16}" y="${legendY}" font-size="11">${name}</text>`);
    lx += 190;
  }
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
