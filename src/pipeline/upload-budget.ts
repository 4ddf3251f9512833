/**
 * A request body Keygate reads in full before dispatch, as the upload budget sees it. The
 * budget owns the `upload…` fields: they make an intrusive list of its party's uploads, so
 * a reservation allocates nothing. The request implements the two members below.
 */
export interface Upload {
  /** The party it is reserved for (undefined: not reserved, or released). */
  uploadParty: string | undefined;
  uploadBytes: number;
  /** The same party's next older and next newer uploads. */
  uploadOlder: Upload | null;
  uploadNewer: Upload | null;
  /** Meaningful on a party's newest upload only: the bytes all its uploads hold. */
  uploadPartyBytes: number;
  /**
   * Whether it may still be cut: its body is still arriving, or it waits for a backend
   * connection. Once it is on its way to the backend it is not (the backend may act on it).
   */
  readonly uploadCuttable: boolean;
  /** Called after the budget released it: the client is answered 503 UPLOADS_SATURATED and its connection closed. */
  cutUpload(): void;
}

/**
 * The memory of one key type's request bodies while Keygate reads them (invariant 11),
 * shared max-min fairly between parties (a scoped key's end user, any other key: askerOf).
 * While the total fits, a reservation is one comparison and one map update. When it does
 * not, a party that would still hold less than the heaviest party gets room by cutting
 * that party's newest upload that can be cut (its client gets 503 UPLOADS_SATURATED, and
 * its connection closes), again until the body fits; a party as heavy as any other is
 * refused instead. So one party alone can use the whole budget, and no number of stalled
 * uploads of some parties keeps a party that holds less from uploading. A cut only ever
 * lowers a party that holds more than the newcomer's party will, so the cuts converge:
 * parties end with shares as even as their uploads' sizes allow.
 *
 * Finding the heaviest party walks the parties holding uploads, and only when the budget
 * is full.
 */
export class UploadBudget {
  readonly #limit: number;
  #bytes = 0;
  /** Each party holding uploads → its newest (entries only while it holds some). */
  readonly #newest = new Map<string, Upload>();
  /** Uploads cut to make room for a lighter party, so far. */
  cuts = 0;

  constructor(limitBytes: number) {
    this.#limit = limitBytes;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Room for `bytes` of `upload`'s body, for `party`. Without an upload the bytes are
   * counted but belong to nobody (they are never cut, and never cut others). False: the
   * budget is full and the party is as heavy as any that could give way.
   */
  reserve(bytes: number, upload?: Upload, party?: string): boolean {
    if (this.#bytes + bytes > this.#limit && (upload === undefined || party === undefined || !this.#makeRoom(bytes, party))) return false;
    this.#bytes += bytes;
    if (upload !== undefined && party !== undefined) this.#link(upload, party, bytes);
    return true;
  }

  /** Gives back an upload's room (nothing when it was cut or never reserved). */
  release(upload: Upload): void {
    const party = upload.uploadParty;
    if (party === undefined) return;
    upload.uploadParty = undefined;
    const bytes = upload.uploadBytes;
    this.#bytes -= bytes;
    const older = upload.uploadOlder;
    const newer = upload.uploadNewer;
    if (newer === null) {
      if (older === null) this.#newest.delete(party);
      else {
        older.uploadNewer = null;
        older.uploadPartyBytes = upload.uploadPartyBytes - bytes;
        this.#newest.set(party, older);
      }
    } else {
      newer.uploadOlder = older;
      if (older !== null) older.uploadNewer = newer;
      this.#newest.get(party)!.uploadPartyBytes -= bytes;
    }
    upload.uploadOlder = null;
    upload.uploadNewer = null;
  }

  /** Gives back bytes reserved without an upload. */
  releaseBytes(bytes: number): void {
    this.#bytes -= bytes;
  }

  /** The bytes `party`'s uploads hold. */
  heldBy(party: string): number {
    return this.#newest.get(party)?.uploadPartyBytes ?? 0;
  }

  #link(upload: Upload, party: string, bytes: number): void {
    const newest = this.#newest.get(party);
    upload.uploadParty = party;
    upload.uploadBytes = bytes;
    upload.uploadNewer = null;
    if (newest === undefined) {
      upload.uploadOlder = null;
      upload.uploadPartyBytes = bytes;
    } else {
      upload.uploadOlder = newest;
      upload.uploadPartyBytes = newest.uploadPartyBytes + bytes;
      newest.uploadNewer = upload;
    }
    this.#newest.set(party, upload);
  }

  /** Cuts the heaviest parties' newest uploads until `bytes` fit; false when no party heavier than `party` would then be has one to cut. */
  #makeRoom(bytes: number, party: string): boolean {
    const after = this.heldBy(party) + bytes;
    // A party holding half the budget or more holds at least as much as any other: refused without a walk.
    if (2 * (after - bytes) >= this.#limit) return false;
    while (this.#bytes + bytes > this.#limit) {
      let most = after;
      let victim: Upload | null = null;
      for (const newest of this.#newest.values()) {
        const held = newest.uploadPartyBytes;
        if (held <= most) continue;
        let u: Upload | null = newest;
        while (u !== null && !u.uploadCuttable) u = u.uploadOlder;
        if (u === null) continue;
        most = held;
        victim = u;
      }
      if (victim === null) return false;
      this.release(victim);
      this.cuts++;
      victim.cutUpload();
    }
    return true;
  }
}
