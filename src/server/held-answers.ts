import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** Why a client's connection was closed under an answer it had not taken. */
export type CutReason = 'stalled' | 'budget';

export interface HeldAnswersOptions {
  /** `--upstream-body-timeout`: a client that takes nothing for this long is cut. */
  readonly stallMs: number;
  /** `--held-answer-budget`: the bytes all such clients may hold together before the largest are cut. */
  readonly budgetBytes: number;
}

/** One answer written whole whose bytes still wait in its socket's queue. */
class Held {
  readonly socket: Socket;
  readonly #timer: NodeJS.Timeout;
  readonly #owner: HeldAnswers;

  constructor(res: ServerResponse, socket: Socket, owner: HeldAnswers, stallMs: number) {
    this.socket = socket;
    this.#owner = owner;
    let queued = socket.writableLength;
    this.#timer = setInterval(() => {
      const now = socket.writableLength;
      if (res.writableFinished || socket.destroyed) this.release();
      else if (now >= queued) this.cut('stalled');
      else queued = now;
    }, stallMs);
    this.#timer.unref();
    const release = (): void => this.release();
    res.once('finish', release);
    res.once('close', release);
  }

  release(): void {
    clearInterval(this.#timer);
    this.#owner.forget(this);
  }

  cut(reason: CutReason): void {
    this.release();
    this.socket.destroy();
    this.#owner.cutFor(reason);
  }
}

/**
 * The checked answers Keygate has written whole and a client has not taken yet (invariant
 * 11: no number of stalled clients may take the memory other keys need).
 *
 * A checked answer (up to `--max-upstream-body`) is written at once; what the kernel does
 * not take waits in the socket's own queue, in Keygate's memory. Two bounds free it:
 * - time: a client that took nothing for `--upstream-body-timeout` has its connection
 *   destroyed (a slow reader that keeps taking is not cut for slowness);
 * - bytes: when a new answer brings what all such clients hold past `--held-answer-budget`,
 *   the connections holding the most are destroyed until the rest fits — the clients that
 *   take least hold most, as Envoy's overload manager resets the streams using the most
 *   buffer memory. The answer being written is never the one cut.
 */
export class HeldAnswers {
  readonly #held = new Set<Held>();
  readonly #options: HeldAnswersOptions;
  /** Connections cut so far, by reason (read at scrape time). */
  readonly cuts: Record<CutReason, number> = { stalled: 0, budget: 0 };

  constructor(options: HeldAnswersOptions) {
    this.#options = options;
  }

  /** Called right after an answer is ended: arms the bounds when part of it still waits. */
  hold(res: ServerResponse): void {
    const socket = res.socket;
    // What the kernel took at once holds nothing here.
    if (socket === null || socket.writableLength === 0) return;
    const held = new Held(res, socket, this, this.#options.stallMs);
    this.#held.add(held);
    this.#shed(held);
  }

  /** The bytes held now (read at scrape time). */
  get bytes(): number {
    let total = 0;
    for (const h of this.#held) total += h.socket.writableLength;
    return total;
  }

  /** Held answers now. */
  get size(): number {
    return this.#held.size;
  }

  forget(held: Held): void {
    this.#held.delete(held);
  }

  cutFor(reason: CutReason): void {
    this.cuts[reason]++;
  }

  #shed(newest: Held): void {
    let total = this.bytes;
    if (total <= this.#options.budgetBytes) return;
    const largest = [...this.#held].filter((h) => h !== newest).sort((a, b) => b.socket.writableLength - a.socket.writableLength);
    for (const h of largest) {
      if (total <= this.#options.budgetBytes) return;
      total -= h.socket.writableLength;
      h.cut('budget');
    }
  }
}
