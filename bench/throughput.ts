import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ColdStartResult, coldStart } from './cold-start.ts';
import { seedBenchKeys } from './keys.ts';
import { scrape, storeQueries } from './metrics.ts';
import { type BenchOptions, SCENARIOS } from './options.ts';
import { assertAlive } from './probe.ts';
import { rateLimitedPolicy } from './rate-limited-policy.ts';
import { type BenchReport, checkTargets, machine, summarizeCase, summarizeColdStart, withRatios } from './report.ts';
import { DISTURBED_PERCENT, measureRounds } from './rounds.ts';
import { baselineCases, type CaseTargets, keygateCases } from './scenarios.ts';
import { stopAll } from './spawn.ts';
import { findNginx, startBackend, startHttpProxy3, startKeygate, startNginx, startUndiciForwarder } from './targets.ts';

const COLD_START_CONCURRENCY = 1000;

/** The scenario bench (the default mode): every baseline and Keygate scenario, interleaved rounds. */
export async function runThroughput(opts: BenchOptions, log: (line: string) => void): Promise<BenchReport> {
  const startedAt = new Date().toISOString();
  // Scenario 8 is judged against 2, so it brings 2 along.
  const scenarios = new Set<number>(opts.scenario === undefined ? SCENARIOS : opts.scenario === 8 ? [2, 8] : [opts.scenario]);
  const notes: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-'));
  try {
    log(
      `keygate bench: ${opts.rounds} round(s) × ${opts.duration} s, warm-up ${opts.warmup} s, lead-in ${opts.leadIn} s, ${opts.connections} connections, Keygate workers ${opts.workers}, scenarios ${[...scenarios].join(',')}`,
    );
    const backend = await startBackend();
    log(`started backend ${backend.url} (pid ${backend.pids.join(',')})`);
    const undici = await startUndiciForwarder(backend.url);
    log(`started bare undici forwarder ${undici.url}`);
    const httpProxy3 = await startHttpProxy3(backend.url);
    log(`started bare http-proxy-3 ${httpProxy3.url}`);
    const nginxBinary = findNginx();
    const nginx = nginxBinary === undefined ? undefined : await startNginx(nginxBinary, backend.url);
    if (nginx === undefined) {
      notes.push('nginx: binary not found, baseline skipped');
      log('nginx not found on PATH: nginx baseline skipped');
    } else log(`started nginx ${nginx.url} (${nginxBinary})`);
    const storePath = join(dir, 'keys.db');
    const keys = await seedBenchKeys(storePath);
    if (opts.profile) mkdirSync(opts.out, { recursive: true });
    const policies = rateLimitedPolicy(dir, keys.aliceLimited.id);
    const keygate = await startKeygate({ upstream: backend.url, storePath, policies, workers: opts.workers, ...(opts.profile ? { profileDir: opts.out } : {}) });
    if (opts.profile) notes.push(`Keygate ran with --cpu-prof: profile(s) in ${opts.out} (load them in Chrome DevTools; profiling slows Keygate, so figures are not comparable)`);
    log(`started keygate ${keygate.url} (pids ${keygate.pids.join(',')})`);

    const targets: CaseTargets = { backend, undici, httpProxy3, nginx, keygate };
    const cases = [...baselineCases(targets), ...keygateCases(targets, keys).filter((c) => scenarios.has(c.scenario!))];
    await assertAlive(cases, 'preflight');

    // With one process, /metrics counts every store query, so the 401 flood can prove each
    // request carried a new key; with --workers N it is one worker's count.
    const queries = async (): Promise<number> => storeQueries(await scrape(keygate.opsUrl));
    const load = { connections: opts.connections, backendPids: backend.pids, ...(opts.workers === 1 ? { storeQueries: queries } : {}) };
    const cold: ColdStartResult[] = [];
    const { rounds, unkept, retries } = await measureRounds({
      cases,
      rounds: opts.rounds,
      warmup: opts.warmup,
      leadIn: opts.leadIn,
      duration: opts.duration,
      retries: opts.retries,
      loadFor: () => load,
      log,
      afterRound: async (round) => {
        if (!scenarios.has(7)) return;
        const r = await coldStart({ upstream: backend.url, concurrency: COLD_START_CONCURRENCY });
        cold.push(r);
        log(
          `[round ${round}/${opts.rounds}] kg 7 cold start             ${r.requests} concurrent first requests: ${r.storeQueries} store quer${r.storeQueries === 1 ? 'y' : 'ies'}, ` +
            `${r.ok} ok, errors ${r.errors}, ${r.elapsedMs.toFixed(0)} ms`,
        );
      },
    });

    const results = withRatios(cases.map((c) => summarizeCase(c, rounds.get(c.id)!, unkept.get(c.id)!)));
    const coldSummary = cold.length === 0 ? undefined : summarizeColdStart(cold, COLD_START_CONCURRENCY);
    const targetChecks = checkTargets(results, coldSummary, scenarios);
    if (retries > 0) notes.push(`${retries} run(s) repeated because other processes used > ${DISTURBED_PERCENT}% of a core meanwhile (the least disturbed attempt is kept)`);
    const verificationErrors = results.reduce((n, r) => n + r.errors, 0) + (coldSummary?.errors ?? 0);
    const { out: _out, ...options } = opts;
    return {
      startedAt,
      finishedAt: new Date().toISOString(),
      machine: machine(),
      options,
      notes,
      results,
      coldStart: coldSummary,
      targets: targetChecks,
      verificationErrors,
      pass: verificationErrors === 0 && (!opts.targets || targetChecks.every((t) => t.pass !== false)),
    };
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}
