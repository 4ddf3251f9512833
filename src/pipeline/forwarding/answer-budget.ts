/** One checked answer as the budget sees it: the bytes it holds, and whether it can still be stopped. */
export interface BudgetedAnswer {
  /** Still arriving from the backend: it can be aborted. */
  readonly reading: boolean;
  /** Aborts the backend exchange; its client gets 503 ANSWERS_SATURATED. Releases it from the budget. */
  cut(): void;
}

/**
 * The memory of the checked answers in Keygate at once (invariant 11: no number of large
 * answers may take the memory other keys' requests need). A checked answer is held whole
 * from its first byte from the backend until its client's answer is over: while it
 * arrives, while it is checked (the event loop or the worker), while it is written.
 * `--max-upstream-body` bounds one; `--checked-answer-budget` bounds them together.
 *
 * When a chunk brings the total past the budget, the answers still arriving that hold the
 * most are aborted until the rest fits, as Envoy's overload manager resets the streams
 * using the most buffer memory: a key that asks for many large lists loses its own largest,
 * and the small answers of everyone else go on. The answer whose chunk crossed is cut only
 * when it is among the largest.
 */
export class AnswerBudget {
  readonly #limit: number;
  /** Each answer held, with the bytes counted for it. */
  readonly #answers = new Map<BudgetedAnswer, number>();
  #bytes = 0;
  /** Answers cut so far (read at scrape time). */
  cuts = 0;

  constructor(limitBytes: number) {
    this.#limit = limitBytes;
  }

  /** The bytes of checked answers held now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** `answer` took `n` more bytes. */
  grow(answer: BudgetedAnswer, n: number): void {
    this.#answers.set(answer, (this.#answers.get(answer) ?? 0) + n);
    this.#bytes += n;
    if (this.#bytes > this.#limit) this.#shed();
  }

  /** The answer is over (written, failed or cut): its bytes are free. */
  release(answer: BudgetedAnswer): void {
    const n = this.#answers.get(answer);
    if (n === undefined) return;
    this.#answers.delete(answer);
    this.#bytes -= n;
  }

  #shed(): void {
    const largest = [...this.#answers].filter(([a]) => a.reading).sort((x, y) => y[1] - x[1]);
    for (const [a] of largest) {
      if (this.#bytes <= this.#limit) return;
      this.cuts++;
      a.cut();
      this.release(a);
    }
  }
}
