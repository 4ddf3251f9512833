import { writeSync, writev } from 'node:fs';

const RETRY_MS = 10;
const SLAB = 64 * 1024;
/** How long a synchronous flush at exit keeps retrying a full pipe before it gives up. */
const EXIT_FLUSH_MS = 50;

/**
 * Makes a pipe or socket on stdout non-blocking. Node does this when it opens
 * `process.stdout` (libuv's uv_pipe_open sets O_NONBLOCK; a file or a terminal is left as
 * it is). A blocking pipe whose reader has stopped (a stuck log shipper) would hold a
 * writev in a libuv thread forever, and nothing could bound the last flush at shutdown;
 * non-blocking, the write answers EAGAIN and the destination retries on a timer that a
 * shutdown can stop waiting for.
 */
export function makeStdoutNonBlocking(): void {
  void process.stdout;
}

/**
 * Buffered, asynchronous line writer for a file descriptor (stdout), shared by pino and
 * the access log. A line is encoded straight into a preallocated slab (one copy, no
 * string concatenation); full slabs are written with one writev. pino's default
 * destination (sonic-boom 4) measured the byte length of its whole pending buffer on
 * every line, about 3 µs per access line at load; this costs well under one.
 *
 * Bounded: when the reader stops reading (a stuck pipe), at most `maxPending` bytes
 * wait; further lines are dropped and counted rather than growing memory without end.
 */
export class LogDestination {
  readonly #fd: number;
  readonly #minLength: number;
  readonly #maxPending: number;
  #slab = Buffer.allocUnsafe(SLAB);
  #used = 0;
  /** Slabs (or slices) filled and waiting for the write in progress to finish. */
  #full: Buffer[] = [];
  #pending = 0;
  #writing = false;
  /** What a write refused with EAGAIN is waiting to send again (null: no retry pending). */
  #retrying: Buffer[] | null = null;
  #waiters: Array<(err?: Error) => void> = [];
  /** Lines dropped because the reader fell `maxPending` bytes behind. */
  dropped = 0;

  constructor(fd: number, minLength: number, maxPending = 16 * 1024 * 1024) {
    this.#fd = fd;
    this.#minLength = minLength;
    this.#maxPending = maxPending;
  }

  write(line: string): boolean {
    if (this.#pending > this.#maxPending) {
      this.dropped++;
      return false;
    }
    // Worst case three bytes per UTF-16 unit; a longer line than a slab gets its own buffer.
    if (this.#used + line.length * 3 > this.#slab.length) {
      this.#retire();
      if (line.length * 3 > SLAB) {
        const big = Buffer.from(line);
        this.#full.push(big);
        this.#pending += big.length;
        this.#maybeDrain();
        return true;
      }
    }
    const n = this.#slab.write(line, this.#used);
    this.#used += n;
    this.#pending += n;
    this.#maybeDrain();
    return true;
  }

  /** Writes what is buffered; `cb` runs once everything written before this call is out. */
  flush(cb?: (err?: Error) => void): void {
    if (cb !== undefined) this.#waiters.push(cb);
    if (!this.#writing) this.#drain();
  }

  /**
   * Flushes, waiting at most `ms` (the last flush at shutdown): a reader that stopped
   * reading cannot hold the process. True when everything written before was written.
   */
  flushWithin(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.flush((err) => {
        clearTimeout(timer);
        resolve(err === undefined);
      });
    });
  }

  /**
   * For process exit: no event loop left, so write synchronously what is still buffered,
   * retrying a full pipe for at most EXIT_FLUSH_MS. A write in progress in libuv's thread
   * pool is left alone (writing beside it would interleave the lines).
   */
  flushSync(): void {
    if (this.#writing && this.#retrying === null) return;
    this.#retire();
    const buf = Buffer.concat([...(this.#retrying ?? []), ...this.#full]);
    this.#retrying = null;
    this.#full = [];
    this.#pending = 0;
    const deadline = performance.now() + EXIT_FLUSH_MS;
    const pause = new Int32Array(new SharedArrayBuffer(4));
    let off = 0;
    while (off < buf.length) {
      try {
        off += writeSync(this.#fd, buf, off);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || performance.now() >= deadline) return;
        Atomics.wait(pause, 0, 0, 1);
      }
    }
  }

  #maybeDrain(): void {
    if (!this.#writing && this.#pending >= this.#minLength) this.#drain();
  }

  /** Moves the filled part of the slab to the queue and starts a fresh slab. */
  #retire(): void {
    if (this.#used === 0) return;
    this.#full.push(this.#slab.subarray(0, this.#used));
    this.#slab = Buffer.allocUnsafe(SLAB);
    this.#used = 0;
  }

  #drain(): void {
    this.#retire();
    const waiters = this.#waiters;
    this.#waiters = [];
    if (this.#full.length === 0) {
      for (const w of waiters) w();
      return;
    }
    const bufs = this.#full;
    this.#full = [];
    this.#pending = 0;
    this.#writing = true;
    this.#send(bufs, waiters);
  }

  #send(bufs: Buffer[], waiters: Array<(err?: Error) => void>): void {
    writev(this.#fd, bufs, (err, n) => {
      if (err !== null) {
        // A non-blocking pipe that is full: try again shortly. Anything else loses the lines.
        if (err.code === 'EAGAIN') {
          this.#retrying = bufs;
          setTimeout(() => {
            // flushSync (at exit) may have taken the lines over in the meantime.
            if (this.#retrying !== bufs) return;
            this.#retrying = null;
            this.#send(bufs, waiters);
          }, RETRY_MS).unref();
          return;
        }
        for (const w of waiters) w(err);
      } else {
        const rest = remainder(bufs, n);
        if (rest.length > 0) {
          this.#send(rest, waiters);
          return;
        }
        for (const w of waiters) w();
      }
      this.#writing = false;
      if (this.#pending >= this.#minLength || this.#waiters.length > 0) this.#drain();
    });
  }
}

/** What is left of `bufs` after the first `written` bytes (a short write). */
function remainder(bufs: Buffer[], written: number): Buffer[] {
  let skip = written;
  for (let i = 0; i < bufs.length; i++) {
    const b = bufs[i]!;
    if (skip < b.length) return [b.subarray(skip), ...bufs.slice(i + 1)];
    skip -= b.length;
  }
  return [];
}
