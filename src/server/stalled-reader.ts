import type { ServerResponse } from 'node:http';

/**
 * A checked answer is written whole (up to `--max-upstream-body`, 16 MB); a client that
 * takes none of it would keep those bytes in Keygate's memory for as long as its socket
 * stays open. Once the answer is ended and part of it still waits in the socket's queue
 * (the kernel's buffer is full), that queue is looked at every `ms` (the `--upstream-body-timeout`, the bound a
 * streamed answer's stalled reader gets too): a client that took nothing since the last
 * look has its connection destroyed, which frees the bytes. A slow reader that keeps
 * taking is never cut; an answer the kernel took at once arms nothing.
 */
export function cutWhenStalled(res: ServerResponse, ms: number): void {
  const socket = res.socket;
  // What the kernel did not take at once waits in the socket's own queue.
  if (socket === null || socket.writableLength === 0) return;
  let queued = socket.writableLength;
  const timer = setInterval(() => {
    const now = socket.writableLength;
    if (res.writableFinished || socket.destroyed) clearInterval(timer);
    else if (now >= queued) {
      clearInterval(timer);
      socket.destroy();
    } else queued = now;
  }, ms);
  timer.unref();
  res.once('finish', () => clearInterval(timer));
  res.once('close', () => clearInterval(timer));
}
