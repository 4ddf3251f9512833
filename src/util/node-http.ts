import { createRequire } from 'node:module';

/**
 * `node:http`, loaded as CommonJS. An ESM `import … from 'node:http'` evaluates every
 * export of the module, and `http.WebSocket` (with `CloseEvent`, `MessageEvent`) is a lazy
 * getter that loads Node's own bundled copy of undici: 2.9 MB of heap where the module
 * itself takes 0.5, for a WebSocket client Keygate never uses. A live heap that much larger
 * is marked again by every full collection (src/server/v8-flags.ts). Types still come from
 * `import type … from 'node:http'`, which loads nothing.
 */
const http = createRequire(import.meta.url)('node:http') as typeof import('node:http');

export const createServer: typeof http.createServer = http.createServer;
