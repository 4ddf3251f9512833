import { Worker } from 'node:worker_threads';
import type { ErrorCode } from '../../errors/catalogue.ts';
import { KeygateError } from '../../errors/keygate-error.ts';
import type { Condition } from '../authorize.ts';
import type { BufferedResponse } from '../forward.ts';
import type { ResourceFields } from './attributes.ts';
import type { CheckedResponse } from './response-checks.ts';

/**
 * An answer at least this large that must be checked fully (a list with items to drop, a
 * long history) is checked on a worker thread, not the event loop: the full check costs
 * about 35 ms per MB (docs/performance.md), so one 12 MB list would stop every other
 * request for 0.4 s, a dozen for seconds (invariant 11). Below it, the copy and the round
 * trip cost more than they save.
 */
export const OFF_THREAD_BYTES = 256 * 1024;

/** A proven answer's check (provenAnswerCheck): the id field and the id the request proved. */
export interface ProvenId {
  readonly idField: string;
  readonly id: string;
}

export interface CheckJob {
  readonly id: number;
  readonly status: number;
  readonly headers: BufferedResponse['headers'];
  readonly body: Uint8Array;
  readonly resource: string;
  readonly fields: Array<[string, readonly string[]]>;
  readonly conditions: readonly Condition[];
  /** null: a list, filtered and written anew (checkListFully); else a proven answer, judged (checkProvenFully). */
  readonly proven: ProvenId | null;
}

export type CheckAnswer =
  | { readonly id: number; readonly ok: true; readonly status: number; readonly headers: BufferedResponse['headers']; readonly body: Uint8Array | null; readonly dropped: number }
  | { readonly id: number; readonly ok: false; readonly code: ErrorCode; readonly status: number; readonly detail: string | undefined };

const WORKER = new URL('./check-worker.ts', import.meta.url);

interface Pending {
  resolve(res: CheckedResponse | null): void;
  reject(err: KeygateError): void;
}

let worker: Worker | null = null;
const pending = new Map<number, Pending>();
let nextId = 0;

/** The one worker, started on first use. It does not keep the process alive; one that dies fails its jobs, and the next job starts another. */
function theWorker(): Worker {
  if (worker !== null) return worker;
  const w = new Worker(WORKER);
  w.unref();
  w.on('message', (answer: CheckAnswer) => {
    const p = pending.get(answer.id);
    if (p === undefined) return;
    pending.delete(answer.id);
    if (!answer.ok) p.reject(new KeygateError(answer.code, { status: answer.status, ...(answer.detail === undefined ? {} : { detail: answer.detail }) }));
    else if (answer.body === null) p.resolve(null);
    else p.resolve({ status: answer.status, headers: answer.headers, body: Buffer.from(answer.body.buffer, answer.body.byteOffset, answer.body.byteLength), dropped: answer.dropped });
  });
  const lost = (why: string): void => {
    if (worker === w) worker = null;
    const jobs = [...pending.values()];
    pending.clear();
    for (const p of jobs) p.reject(new KeygateError('UPSTREAM_BAD_RESPONSE', { detail: `check worker ${why}` }));
  };
  w.on('error', (err) => lost(`failed: ${err.message}`));
  w.on('exit', (code) => lost(`exited with ${code}`));
  worker = w;
  return w;
}

/**
 * The answer's bytes in memory of their own, to be transferred: one copy of its pieces
 * (never joined first), into memory that is not zero-filled first (every byte is written).
 * At 40 concurrent 12 MB lists, joining and then copying cost the event loop 2.3 s.
 */
function ownCopy(res: BufferedResponse): Uint8Array {
  const parts = res.parts ?? [res.body];
  let length = 0;
  for (const p of parts) length += p.length;
  const out = Buffer.allocUnsafeSlow(length);
  let at = 0;
  for (const p of parts) at += p.copy(out, at);
  return out;
}

/**
 * The full check on the worker thread. A list resolves to the answer Keygate wrote; a
 * proven answer resolves to null when it may be released as it is, and rejects as the
 * check on the event loop throws. The answer's bytes are copied once, into memory of
 * their own, and transferred.
 */
export function checkOffThread(res: BufferedResponse, resource: ResourceFields, conditions: readonly Condition[], proven: null): Promise<CheckedResponse>;
export function checkOffThread(res: BufferedResponse, resource: ResourceFields, conditions: readonly Condition[], proven: ProvenId): Promise<null>;
export function checkOffThread(res: BufferedResponse, resource: ResourceFields, conditions: readonly Condition[], proven: ProvenId | null): Promise<CheckedResponse | null> {
  const w = theWorker();
  const id = ++nextId;
  const body = ownCopy(res);
  const job: CheckJob = {
    id,
    status: res.status,
    headers: res.headers,
    body,
    resource: resource.name,
    fields: [...resource.fields],
    conditions: conditions.map((c) => ({ attribute: c.attribute, values: [...c.values] })),
    proven,
  };
  return new Promise<CheckedResponse | null>((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.postMessage(job, [body.buffer as ArrayBuffer]);
  });
}
