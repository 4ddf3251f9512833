import type { Worker } from 'node:cluster';
import type { ReadinessReport } from './readiness.ts';

/**
 * What a `--workers N` primary and its workers say to each other over the cluster IPC
 * channel. A worker reports once that it listens; the primary asks each worker for its
 * readiness and its metrics (prom-client's JSON form, aggregated with AggregatorRegistry)
 * whenever its own ops listener is asked.
 */
export type WorkerMessage =
  | { readonly type: 'keygate:listening'; readonly proxy: string }
  | { readonly type: 'keygate:readiness'; readonly id: number; readonly report: ReadinessReport }
  | { readonly type: 'keygate:metrics'; readonly id: number; readonly metrics: object[] | null };

export type PrimaryMessage = { readonly type: 'keygate:readiness' | 'keygate:metrics'; readonly id: number };

export function isWorkerMessage(message: unknown): message is WorkerMessage {
  return typeof message === 'object' && message !== null && typeof (message as { type?: unknown }).type === 'string' && (message as { type: string }).type.startsWith('keygate:');
}

export function isPrimaryMessage(message: unknown): message is PrimaryMessage {
  const m = message as { type?: unknown; id?: unknown } | null;
  return typeof m === 'object' && m !== null && (m.type === 'keygate:readiness' || m.type === 'keygate:metrics') && typeof m.id === 'number';
}

let nextId = 0;

/**
 * Asks one worker and waits at most `timeoutMs` for its answer: null when it does not
 * answer in time or its channel is gone (a worker that just died, or a stuck one).
 */
export function ask<T extends 'keygate:readiness' | 'keygate:metrics'>(worker: Worker, type: T, timeoutMs: number): Promise<Extract<WorkerMessage, { type: T }> | null> {
  const id = nextId++;
  return new Promise((resolve) => {
    const done = (answer: Extract<WorkerMessage, { type: T }> | null): void => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      resolve(answer);
    };
    const onMessage = (message: unknown): void => {
      if (isWorkerMessage(message) && message.type === type && 'id' in message && message.id === id) done(message as Extract<WorkerMessage, { type: T }>);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    worker.on('message', onMessage);
    if (!worker.isConnected()) {
      done(null);
      return;
    }
    const request: PrimaryMessage = { type, id };
    worker.send(request, (err: Error | null) => {
      if (err !== null) done(null);
    });
  });
}
