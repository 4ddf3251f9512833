import { request } from 'undici';

/** One sample of Prometheus text exposition: name, labels, value. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of every sample named `name` whose labels include `labels`. */
export function sumOf(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

/**
 * GET /metrics on the ops listener. With --workers N the primary serves it, aggregated
 * over the workers; the cold-start scenario still runs a single process (it counts the
 * store queries of one key cache).
 */
export async function scrape(opsUrl: string): Promise<Sample[]> {
  const res = await request(`${opsUrl}/metrics`, { reset: true });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`GET ${opsUrl}/metrics: ${res.statusCode}`);
  return parseMetrics(text);
}

/** Store queries Keygate made (successful and failed), from the store-latency histogram's counts. */
export function storeQueries(samples: readonly Sample[]): number {
  return sumOf(samples, 'keygate_store_query_duration_seconds_count');
}
