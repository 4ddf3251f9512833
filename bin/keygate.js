#!/usr/bin/env -S node --max-semi-space-size=4
// --max-semi-space-size=4 (MB): on a machine with plenty of RAM V8 lets the young
// generation grow to 3 × 32 MB under a high allocation rate (a flood of requests), which
// showed as +148 MB RSS in the bench's million-key flood; capped at 4 MB it was +69 MB at
// the same throughput. The Dockerfile's ENTRYPOINT and the npm scripts pass the same flag
// (test/unit/entrypoint.test.ts keeps them in step).
// Keygate runs its TypeScript sources directly: Node 24 strips types natively (no build
// step). An older Node would fail on the first `.ts` import with an obscure message, so
// say what is wrong first; the import is dynamic so that this check runs before it.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.error(`keygate: needs Node.js 24 (this is ${process.version}). Run it through npm ` +
    '(npm run demo, npx keygate …), which puts the project\'s own Node 24 first on PATH.');
  process.exit(1);
}
const { main } = await import('../src/cli/main.ts');

await main(process.argv.slice(2));
