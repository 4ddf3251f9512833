// `npm run bench`: Keygate against baselines on loopback, interleaved rounds, medians,
// ratios to a bare undici forwarder, the performance targets (checkTargets in report.ts).
// See USAGE in options.ts.
import { join, relative } from 'node:path';
import { formatGrowth, growthMarkdown, recordGrowth, writeGrowthReport } from './growth/report.ts';
import { runGrowth } from './growth/run.ts';
import { formatMemory, runMemory, writeMemoryReport } from './memory.ts';
import { type BenchOptions, OptionError, parseOptions } from './options.ts';
import { recordResults, resultsMarkdown } from './record.ts';
import { formatTable, formatTargets, writeReport } from './report.ts';
import { stopAll } from './spawn.ts';
import { ROOT } from './targets.ts';
import { runThroughput } from './throughput.ts';

const log = (line: string): void => void process.stdout.write(line + '\n');
/** Paths inside the repository relative to it (what `npm run bench` users see), others absolute. */
const shown = (path: string): string => (relative(ROOT, path).startsWith('..') ? path : relative(ROOT, path));

async function main(): Promise<number> {
  let opts: BenchOptions;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof OptionError)) throw err;
    process.stderr.write(err.message + '\n');
    return err.message.startsWith('usage:') ? 0 : 2;
  }
  if (opts.memory) {
    const report = await runMemory(opts, log);
    log('');
    log(formatMemory(report));
    log(`\nwrote ${shown(writeMemoryReport(opts.out, report))}`);
    return report.pass || (!opts.targets && report.flood.errors === 0) ? 0 : 1;
  }
  if (opts.growth !== undefined) {
    const report = await runGrowth(opts, log);
    log('');
    log(formatGrowth(report));
    log(`\nwrote ${shown(writeGrowthReport(opts.out, report))}`);
    if (opts.record && report.verificationErrors > 0) log('not recorded: a run with verification errors is no result');
    else if (opts.record) {
      recordGrowth(join(ROOT, 'README.md'), join(ROOT, 'docs/performance.md'), growthMarkdown(report, `npm run bench -- ${process.argv.slice(2).join(' ')}`));
      log('rewrote the growth table in README.md and added this run to docs/performance.md');
    }
    if (!report.pass) log(report.verificationErrors > 0 ? 'bench FAILED: verification errors' : 'bench FAILED: target(s) missed');
    return report.pass ? 0 : 1;
  }
  const report = await runThroughput(opts, log);
  log('');
  log(formatTable(report));
  log('');
  log(formatTargets(report));
  for (const note of report.notes) log(`note: ${note}`);
  const files = writeReport(opts.out, report);
  log(`\nwrote ${shown(files.json)}, ${shown(files.svg)}`);
  if (opts.record && report.verificationErrors > 0) log('not recorded: a run with verification errors is no result');
  else if (opts.record) {
    recordResults(join(ROOT, 'README.md'), join(ROOT, 'docs/performance.md'), resultsMarkdown(report, `npm run bench -- ${process.argv.slice(2).join(' ')}`));
    log('rewrote the results table in README.md and added this run to docs/performance.md');
  }
  if (!report.pass) log(report.verificationErrors > 0 ? 'bench FAILED: verification errors' : 'bench FAILED: target(s) missed');
  return report.pass ? 0 : 1;
}

// Ctrl-C must not leave servers behind: stop every process this run started.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void stopAll().finally(() => process.exit(130)));
}

try {
  process.exitCode = await main();
} catch (err) {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  await stopAll();
  process.exitCode = 1;
}
// Undici's global pool (preflight, /metrics) keeps sockets open; nothing else is pending.
process.exit(process.exitCode);
