/** One checked answer as the budget sees it: the bytes it holds, and whether it can still be stopped. */
export interface BudgetedAnswer {
  /** Whom the answer is for (askerOf: a scoped key's end user, or any other key). */
  readonly party: string;
  /** Still arriving from the backend: it can be aborted. */
  readonly reading: boolean;
  /** Aborts the backend exchange; its client gets 503 ANSWERS_SATURATED. Releases it from the budget. */
  cut(): void;
}

/**
 * The memory of the checked answers in Keygate at once (invariant 11: no number of large
 * answers may take the memory other keys' requests need). A checked answer is counted
 * from its first byte from the backend until it is handed to its client whole: while it
 * arrives and while it is checked (the event loop or the worker). What a client then leaves
 * untaken is the held answers' (`--held-answer-budget`, server/held-answers.ts), which cut
 * the stalled readers holding most. `--max-upstream-body` bounds one answer;
 * `--checked-answer-budget` bounds them together.
 *
 * When a chunk brings the total past the budget, answers still arriving are aborted until
 * the rest fits: the largest of the party holding the most, then again (max-min fairness,
 * as Envoy's overload manager resets the streams using the most buffer memory). A user who
 * asks for many large lists at once so loses her own, and another user's single large list
 * is cut only when she holds more than everyone else.
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
    while (this.#bytes > this.#limit) {
      // Each party's bytes, and its largest answer still arriving (a walk only when over).
      const held = new Map<string, number>();
      const largest = new Map<string, [BudgetedAnswer, number]>();
      for (const [a, n] of this.#answers) {
        held.set(a.party, (held.get(a.party) ?? 0) + n);
        const l = largest.get(a.party);
        if (a.reading && (l === undefined || n > l[1])) largest.set(a.party, [a, n]);
      }
      let victim: BudgetedAnswer | undefined;
      let most = -1;
      for (const [party, [a]] of largest) {
        const n = held.get(party)!;
        if (n > most) {
          most = n;
          victim = a;
        }
      }
      if (victim === undefined) return;
      this.cuts++;
      victim.cut();
      this.release(victim);
    }
  }
}
