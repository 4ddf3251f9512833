import { readFileSync } from 'node:fs';

/**
 * The process's open-file limit as it stands once Node has started (Node raises the soft
 * limit to the hard one at start-up), from /proc/self/limits; null where there is none
 * (not Linux) or it says "unlimited".
 */
export function openFileLimit(limitsText?: string): number | null {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return null;
    }
  }
  const line = text.split('\n').find((l) => l.startsWith('Max open files'));
  const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
  const n = Number(soft);
  return Number.isInteger(n) && n > 0 ? n : null;
}

/**
 * File descriptors kept out of the proxy listener's reach besides the backend pool: the
 * ops listener and its probes, the key store (SQLite's three files, or PostgreSQL's
 * pool and LISTEN connection), policy files and their watcher, stdio, libuv's own.
 */
const FD_RESERVE = 128;

/** Below this the proxy listener could not serve a handful of clients: refuse to start. */
export const MIN_PROXY_CONNECTIONS = 16;

/**
 * How many client connections the proxy listener accepts at once, so that a flood of
 * connections (silent or not) can never take the descriptors the ops listener, the store
 * and the backend pool need: the limit, less the pool, less FD_RESERVE. Null: no limit known.
 */
export function proxyConnectionCap(fdLimit: number | null, upstreamConnections: number): number | null {
  if (fdLimit === null) return null;
  return fdLimit - upstreamConnections - FD_RESERVE;
}
