import autocannon, { type AutocannonClient, type AutocannonRequest } from 'autocannon';
import { unknownKey } from './fixtures.ts';
import { cpuSeconds, rssBytes, systemBusySeconds } from './procfs.ts';
import type { LoadCase } from './scenarios.ts';
import { percentile } from './stats.ts';

/** One measured run of one case. Latencies in ms, CPU in % of one core, RSS in MB. */
export interface Measurement {
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  /** Verification failures: wrong status, wrong body, connection errors, timeouts. */
  readonly errors: number;
  readonly errorSamples: string[];
  readonly statuses: Record<string, number>;
  /** The target's processes (the backend itself for "backend direct"). */
  readonly cpuPercent: number;
  readonly cpuUsPerRequest: number;
  readonly rssMb: number;
  readonly backendCpuPercent: number;
  /** The bench process itself (autocannon + verification): near 100 % means the client is the limit. */
  readonly clientCpuPercent: number;
  /**
   * CPU used meanwhile by processes that are not part of the run (% of one core): other
   * work on the machine. More than a few % means this run competed for the cores.
   */
  readonly otherCpuPercent: number;
}

export interface LoadOptions {
  readonly connections: number;
  /** Seconds; ignored when `amount` is set. */
  readonly duration: number;
  /** Stop after this many responses instead of after `duration`. */
  readonly amount?: number;
  readonly pipelining?: number;
  /** The backend's processes, charged separately from the target's. */
  readonly backendPids: readonly number[];
  /**
   * Keygate's store-query count (its /metrics, one process): when given, a fresh-key run
   * fails unless Keygate made at least one store query per response.
   */
  readonly storeQueries?: () => Promise<number>;
  /** Called every second with responses so far (the memory flood prints progress). */
  readonly onTick?: (responses: number) => void;
}

const MAX_SAMPLES = 5;

/** Unknown keys drawn ahead per second of a fresh-key run: above any rate seen on 2 cores. */
const FRESH_KEYS_PER_SECOND = 80_000;

function freshKeys(n: number): string[] {
  const keys = new Array<string>(n);
  for (let i = 0; i < n; i++) keys[i] = unknownKey();
  return keys;
}

/**
 * Sends a different pre-drawn key on every request without rebuilding the request.
 * autocannon's own way (setupRequest) runs its whole request builder before each send,
 * which cost the load generator, on the same two cores as Keygate, about 17 µs a request:
 * more than a third of Keygate's own 401. Instead autocannon builds each connection's
 * request once with a placeholder key of the same length, and every send copies those
 * bytes and writes the next key over the placeholder. The keys are shared by all
 * connections, so no key is sent twice.
 */
function freshKeySender(pool: readonly string[]): { placeholder: string; setupClient: (client: AutocannonClient) => void; sent: () => number } {
  const length = unknownKey().length;
  if (pool.some((k) => k.length !== length)) throw new Error('fresh keys must all have one length');
  const placeholder = '#'.repeat(length);
  let next = 0;
  const nextKey = (): string => {
    const at = next++;
    return at < pool.length ? pool[at]! : unknownKey();
  };
  return {
    placeholder,
    sent: () => next,
    setupClient(client) {
      const template = client.getRequestBuffer();
      const at = template.indexOf(placeholder, 0, 'latin1');
      if (at === -1) throw new Error('fresh-key placeholder missing from the built request');
      client.getRequestBuffer = () => {
        const bytes = Buffer.allocUnsafe(template.length);
        template.copy(bytes);
        bytes.write(nextKey(), at, 'latin1');
        return bytes;
      };
    },
  };
}

/**
 * Runs autocannon against one case. Every response is checked as it arrives (status and
 * body), so a Keygate that got faster by answering wrongly shows errors, not a win.
 */
export async function runLoad(c: LoadCase, opts: LoadOptions): Promise<Measurement> {
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const errorSamples: string[] = [];
  let errors = 0;
  let responses = 0;
  const fail = (what: string): void => {
    errors++;
    if (errorSamples.length < MAX_SAMPLES) errorSamples.push(what);
  };

  const request: AutocannonRequest = {
    method: c.method,
    path: c.path,
    headers: { ...c.headers },
    ...(c.body === undefined ? {} : { body: c.body }),
    onResponse(status, body) {
      responses++;
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status !== c.expectStatus) return fail(`status ${status} (expected ${c.expectStatus}): ${body.slice(0, 200)}`);
      const wrong = c.check(body);
      if (wrong !== undefined) fail(`${wrong}: ${body.slice(0, 200)}`);
    },
  };
  let setupClient: ((client: AutocannonClient) => void) | undefined;
  let keysSent = (): number => 0;
  if (c.freshKey === true) {
    // The keys are drawn before the clock starts: the load generator shares the two cores
    // with Keygate, and drawing a key (32 random characters and a CRC) cost it about as
    // much as Keygate's whole 401. Past the pool (a faster machine), keys are drawn live.
    const sender = freshKeySender(freshKeys(opts.amount ?? Math.ceil(opts.duration * FRESH_KEYS_PER_SECOND)));
    request.headers!['texture-api-key'] = sender.placeholder;
    setupClient = sender.setupClient;
    keysSent = sender.sent;
  }
  const queries0 = c.freshKey === true && opts.storeQueries !== undefined ? await opts.storeQueries() : undefined;

  const cpu0 = cpuSeconds(c.target.pids);
  const backend0 = cpuSeconds(opts.backendPids);
  const client0 = process.cpuUsage();
  const system0 = systemBusySeconds();
  const t0 = performance.now();
  const instance = autocannon({
    url: c.target.url,
    connections: opts.connections,
    pipelining: opts.pipelining ?? 1,
    ...(opts.amount === undefined ? { duration: opts.duration } : { amount: opts.amount }),
    timeout: 10,
    requests: [request],
    ...(setupClient === undefined ? {} : { setupClient }),
  });
  // autocannon's own histogram keeps whole milliseconds and only 2xx by default; ours keeps
  // the exact time of every response, 401/403 included.
  instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => latencies.push(ms));
  const ticker = opts.onTick === undefined ? undefined : setInterval(() => opts.onTick!(responses), 1000);
  const result = await instance;
  if (ticker !== undefined) clearInterval(ticker);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(c.target.pids) - cpu0;
  const backendCpu = cpuSeconds(opts.backendPids) - backend0;
  const client = process.cpuUsage(client0);
  const system = systemBusySeconds() - system0;
  const clientSeconds = (client.user + client.system) / 1e6;
  // "backend direct" charges the backend twice (it is the target too): count it once.
  const ours = clientSeconds + cpu + (c.target.pids === opts.backendPids ? 0 : backendCpu);

  if (c.freshKey === true) {
    // Proof from Keygate's side that every request carried a key it had never seen: a
    // repeated key would be answered from the negative cache without a store query.
    if (keysSent() < responses) fail(`${keysSent()} keys sent for ${responses} responses`);
    if (queries0 !== undefined) {
      const queries = (await opts.storeQueries!()) - queries0;
      if (queries < responses) fail(`Keygate made ${queries} store queries for ${responses} fresh keys: keys were repeated`);
    }
  }
  if (result.errors > 0) fail(`${result.errors} connection errors (${result.timeouts} timeouts)`);
  errors += Math.max(0, result.errors - 1); // counted once above, the rest here
  const sorted = Float64Array.from(latencies).sort();
  return {
    requests: responses,
    seconds,
    rps: responses / seconds,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    errors,
    errorSamples,
    statuses,
    cpuPercent: (cpu / seconds) * 100,
    cpuUsPerRequest: responses === 0 ? 0 : (cpu / responses) * 1e6,
    rssMb: rssBytes(c.target.pids) / 2 ** 20,
    backendCpuPercent: (backendCpu / seconds) * 100,
    clientCpuPercent: (clientSeconds / seconds) * 100,
    otherCpuPercent: Math.max(0, ((system - ours) / seconds) * 100),
  };
}
