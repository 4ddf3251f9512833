import { parentPort } from 'node:worker_threads';
import { KeygateError } from '../../errors/keygate-error.ts';
import type { CheckAnswer, CheckJob } from './off-thread-check.ts';
import { checkListFully, checkProvenFully } from './response-checks.ts';

// The full check of a large answer, on its own thread (off-thread-check.ts starts it):
// parsing and filtering 10 MB takes the better part of a second, and on the event loop
// every other key's request would wait that long (invariant 11). Jobs run one after the
// other; the answer's bytes come in and go out transferred, not copied.
parentPort!.on('message', (job: CheckJob) => {
  let answer: CheckAnswer;
  const transfer: ArrayBuffer[] = [];
  try {
    const body = Buffer.from(job.body.buffer, job.body.byteOffset, job.body.byteLength);
    const res = { status: job.status, headers: job.headers, body };
    const resource = { name: job.resource, fields: new Map(job.fields) };
    if (job.proven !== null) {
      checkProvenFully(res, resource, job.conditions, job.proven.idField, job.proven.id);
      answer = { id: job.id, ok: true, status: job.status, headers: job.headers, body: null, dropped: 0 };
    } else {
      const out = checkListFully(res, resource, job.conditions);
      const bytes = out.body;
      // A small result may sit in Buffer's shared pool: copy it into memory of its own to transfer it.
      const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : Buffer.from(bytes);
      transfer.push(own.buffer as ArrayBuffer);
      answer = { id: job.id, ok: true, status: out.status, headers: out.headers, body: own, dropped: out.dropped ?? 0 };
    }
  } catch (err) {
    answer =
      err instanceof KeygateError
        ? { id: job.id, ok: false, code: err.code, status: err.status, detail: err.detail }
        : { id: job.id, ok: false, code: 'UPSTREAM_BAD_RESPONSE', status: 502, detail: `answer check failed: ${String(err)}` };
  }
  parentPort!.postMessage(answer, transfer);
});
