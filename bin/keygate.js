#!/usr/bin/env -S node --max-semi-space-size=16 --expose-gc
// --max-semi-space-size=16 (MB): on a machine with plenty of RAM V8 lets the young
// generation grow to 3 × 32 MB under a high allocation rate (a flood of requests). At
// 4 MB (an earlier setting, for RSS) young-generation collections ran so often that they
// cost about a sixth of the proxy's CPU per checked request; at 16 MB the bench's checked
// list (scenario 2) used 71 → 59 µs of CPU per request, RSS under load 144 → 170 MB, and
// the million-key flood still grew RSS by only 10 MB. The Dockerfile's ENTRYPOINT and the
// npm scripts pass the same flags (test/unit/entrypoint.test.ts keeps them in step).
// --expose-gc: after a burst of connections V8 keeps the heap it grew (its memory reducer
// never starts on a process that has gone idle); src/server/memory-settle.ts gives it
// back with one collection once traffic has stopped.
// Keygate runs its TypeScript sources directly: Node 24 strips types natively (no build
// step). An older Node would fail on the first `.ts` import with an obscure message, so
// say what is wrong first; the import is dynamic so that this check runs before it.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.error(`keygate: needs Node.js 24 (this is ${process.version}). Run it through npm ` + "(npm run demo, npx keygate …), which puts the project's own Node 24 first on PATH.");
  process.exit(1);
}
// Node's compile cache: V8's code for Keygate's modules is kept on disk, so a restart does
// not compile them again (start-up 500 -> 280 ms on the development machine). The directory
// is Keygate's own, not the shared temporary directory another local user could write to;
// one that cannot be written (a read-only image) leaves the cache off, as does
// NODE_DISABLE_COMPILE_CACHE=1. NODE_COMPILE_CACHE, when set, has enabled it already.
const { enableCompileCache } = await import('node:module');
const { fileURLToPath } = await import('node:url');
enableCompileCache(fileURLToPath(new URL('../node_modules/.cache/keygate/', import.meta.url)));
// Keygate's V8 settings that cannot go on the command line (src/server/v8-flags.ts says which and why).
const { applyRuntimeV8Flags } = await import('../src/server/v8-flags.ts');
applyRuntimeV8Flags();
const { main } = await import('../src/cli/main.ts');

await main(process.argv.slice(2));
