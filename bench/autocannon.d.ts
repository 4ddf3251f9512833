// autocannon ships no types and @types/autocannon is not a dependency: this declares only
// the part of its programmatic API the bench uses (autocannon 9).
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  export interface RequestParams {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
  }

  export interface AutocannonRequest extends RequestParams {
    /** Called before each request is built; returning a new object changes that request only. */
    setupRequest?: (req: RequestParams & { headers: Record<string, string> }, context: Record<string, unknown>) => RequestParams | null;
    /** Called with every response (status, full body text, per-connection context, headers). */
    onResponse?: (status: number, body: string, context: Record<string, unknown>, headers: Record<string, string | string[]>) => void;
  }

  /**
   * One connection, as handed to setupClient. getRequestBuffer is autocannon's own
   * (lib/httpClient.js, undocumented): it returns the bytes of the next request to send,
   * and the fresh-key flood replaces it on each connection. Pinned by package-lock.
   */
  export interface AutocannonClient extends EventEmitter {
    getRequestBuffer(): Buffer;
  }

  export interface Options {
    url: string;
    connections?: number;
    duration?: number;
    amount?: number;
    pipelining?: number;
    timeout?: number;
    method?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    requests?: AutocannonRequest[];
    setupClient?: (client: AutocannonClient) => void;
    excludeErrorStats?: boolean;
  }

  export interface Histogram {
    average: number;
    mean: number;
    stddev: number;
    min: number;
    max: number;
    total: number;
    p50: number;
    p99: number;
  }

  export interface Result {
    duration: number;
    errors: number;
    timeouts: number;
    mismatches: number;
    non2xx: number;
    resets: number;
    statusCodeStats: Record<string, { count: number }>;
    requests: Histogram;
    latency: Histogram & { p99_9: number };
  }

  export interface Instance extends EventEmitter, PromiseLike<Result> {
    stop(): void;
  }

  function autocannon(options: Options): Instance;
  export default autocannon;
}
