import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import { type ConnectionDeadlines, REQUEST_TIMEOUT_MS } from '../config/deadlines.ts';

const KEEP_ALIVE_TIMEOUT_MS = 5_000;

/**
 * After SIGTERM, how long an idle kept-alive connection stays open. A client under load
 * sends its next request the moment it reads an answer; closing a connection it may be
 * writing on at that instant resets that request (ECONNRESET). Within this grace such a
 * request is answered (with `Connection: close`); a connection idle for longer is closed.
 */
const DRAIN_IDLE_GRACE_MS = 1_000;

/**
 * Node checks the header and request deadlines of all connections on one interval (30 s
 * by default), so a 10 s header deadline fired at up to 40 s. A tenth of the deadline
 * (at most 1 s) makes it fire within 10 % of its value; the check walks only connections
 * that are part-way through a request, in C++.
 */
export function checkingIntervalMs(headersMs: number): number {
  return Math.max(10, Math.min(1_000, Math.floor(headersMs / 10)));
}

/** The http.Server options that carry the deadlines Node enforces itself. */
export function listenerOptions(d: ConnectionDeadlines): ServerOptions {
  return {
    headersTimeout: d.headersMs,
    requestTimeout: Math.max(REQUEST_TIMEOUT_MS, d.headersMs),
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    connectionsCheckingInterval: checkingIntervalMs(d.headersMs),
  };
}

/**
 * Connections past `--max-connections` Node still accepts, so that each can make room by
 * closing a connection that holds a place without a request (see ListenerConnections).
 * Past these, Node refuses at once ('drop').
 */
const ADMIT_HEADROOM = 16;

/** The response Node is writing on a socket (what its own closeIdleConnections reads). */
function currentResponse(socket: Socket): ServerResponse | null | undefined {
  return (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
}

/**
 * The connections of one listener: the first-byte deadline of each (Node has none: a
 * connection that never sends a byte was never timed out), and the drain on shutdown.
 *
 * The first-byte deadline is the socket's idle timer, armed at accept. Node's parser
 * restarts it on every chunk it reads, and the proxy handler clears it once a request's
 * headers are in (`socket.timeout` is then non-zero only on a connection's first request);
 * between requests Node's keep-alive timer takes its place. When it fires, the socket has
 * neither a request nor a response, so Node destroys it.
 *
 * At `max` connections a newcomer is not simply refused: the oldest connection that has
 * not yet sent a first request's headers is closed to let it in, and only when there is
 * none is the newcomer closed. Kept-alive connections between requests are never closed
 * for a newcomer (a client may be writing its next request on one: it would see
 * ECONNRESET). An age threshold would not spare a slow client either: under a flood of
 * reconnecting connections every waiting one is young. Otherwise a few hundred slowloris connections, each
 * reconnecting the moment its header deadline closes it, keep every client out (0 of 40
 * answered at 780 of them against 768 places); a client that sends its request at once is
 * never the oldest waiting one.
 */
export class ListenerConnections {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #firstByteMs: number;
  readonly #max: number | null;
  readonly #forget: (this: Socket) => void;
  /** Connections (with a `max`) that have not yet sent a first request's headers, oldest first. */
  readonly #waiting = new Set<Socket>();
  /** Connections closed at `max`: a waiting one to let a newcomer in, or the newcomer (read at scrape time). */
  evicted = 0;
  /** The most connections open at once since takePeak last ran. */
  #peak = 0;
  /** Read by the proxy handler on every request. */
  draining = false;

  constructor(server: Server, firstByteMs: number, max: number | null = null) {
    this.#server = server;
    this.#firstByteMs = firstByteMs;
    this.#max = max;
    if (max !== null) server.maxConnections = max + ADMIT_HEADROOM;
    const sockets = this.#sockets;
    const waiting = this.#waiting;
    this.#forget = function (this: Socket) {
      sockets.delete(this);
      waiting.delete(this);
    };
    server.on('connection', (socket: Socket) => this.#accept(socket));
    // A connection's first request is under way: it no longer waits (a delete of nothing after that).
    if (max !== null) server.prependListener('request', (req: IncomingMessage) => waiting.delete(req.socket));
  }

  get size(): number {
    return this.#sockets.size;
  }

  /** The most connections open at once since the last call; from now on counted from those open now. */
  takePeak(): number {
    const peak = Math.max(this.#peak, this.#sockets.size);
    this.#peak = this.#sockets.size;
    return peak;
  }

  #accept(socket: Socket): void {
    this.#sockets.add(socket);
    if (this.#max !== null) this.#waiting.add(socket);
    if (this.#sockets.size > this.#peak) this.#peak = this.#sockets.size;
    socket.once('close', this.#forget);
    socket.setTimeout(this.#firstByteMs);
    if (this.#max !== null && this.#sockets.size > this.#max) this.#makeRoom(socket);
  }

  /** Closes the oldest connection with no request under way, else the newcomer. */
  #makeRoom(newcomer: Socket): void {
    this.evicted++;
    // Oldest first: a Set iterates in insertion order.
    for (const s of this.#waiting) {
      if (s === newcomer || s.destroyed) continue;
      s.destroy();
      return;
    }
    newcomer.destroy();
  }

  /**
   * Stops accepting and closes every connection as soon as it is idle; resolves once the
   * last is closed. Every answer from now on carries `Connection: close` (the handler reads
   * `draining`; answers already under way but not yet started get it here); a connection
   * idle now, or idle after an answer that had already gone out with keep-alive, is closed
   * after DRAIN_IDLE_GRACE_MS unless a request arrives first.
   */
  drain(): Promise<void> {
    this.draining = true;
    const server = this.#server as Server & { keepAliveTimeoutBuffer?: number };
    // Node arms this after each kept-alive answer; from now on it is the grace.
    server.keepAliveTimeout = DRAIN_IDLE_GRACE_MS;
    server.keepAliveTimeoutBuffer = 0;
    const closed = new Promise<void>((resolve) => {
      // net.Server's close, not http.Server's: that one also destroys every idle
      // connection at once, and resets the request a client is sending on one.
      NetServer.prototype.close.call(server, () => resolve());
    });
    for (const socket of this.#sockets) {
      const res = currentResponse(socket);
      if (res === null || res === undefined) socket.setTimeout(DRAIN_IDLE_GRACE_MS);
      else if (!res.headersSent) res.shouldKeepAlive = false;
    }
    return closed;
  }
}
