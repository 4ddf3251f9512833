#!/usr/bin/env node
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
