/** One Connect link session as the store keeps it: never its token, only the token's hash. */
export interface LinkRecord {
  readonly id: string;
  /** The key that created the link (a connect or server key). */
  readonly createdBy: string;
  /**
   * The hash of the secret that created it (null: a link made before Keygate kept it).
   * When the link is finished that secret must still work, and the key minted ends no later
   * than it: the old secret of a rotation, in its grace period or rotated away since, does
   * not get a key that outlives it.
   */
  readonly makerSecretHash: string | null;
  readonly referenceId: string;
  /**
   * Whether the key that made the link named its user (false: Keygate drew a fresh
   * `texture-generated:` one). A chosen user is judged again at every page and at the
   * finish, whatever the id looks like: an id of the generated form can be chosen too.
   */
  readonly referenceChosen: boolean;
  readonly clientName: string | null;
  readonly redirectUrl: string;
  readonly state: string | null;
  readonly tags: readonly string[];
  readonly customerInfo: Readonly<Record<string, string>> | null;
  readonly manufacturerFilters: Readonly<Record<string, readonly string[]>> | null;
  /** Copied from the creating key: the scoped key the link mints inherits them. */
  readonly allowedOrigins: readonly string[];
  readonly createdAt: string;
  readonly expiresAt: string;
  /**
   * The link's own random secret, never sent to a browser: it signs the session values
   * Keygate issues for the link and derives its CSRF tokens (link-session.ts).
   */
  readonly sessionKey: string;
  /** SHA-256 of the session value of the browser the link is bound to (by its first form post), or null. */
  readonly sessionHash: string | null;
  /** SHA-256 of the device step's state, while the user is at the backend's page. */
  readonly stepHash: string | null;
  /** When the browser came back from the device step. */
  readonly linkedAt: string | null;
  /** When the link was finished (allowed or cancelled): set once, by one request only. */
  readonly usedAt: string | null;
  readonly outcome: 'key' | 'denied' | null;
  /** The scoped key the link minted. */
  readonly keyId: string | null;
}

/**
 * Links live beside the keys, in the same store (SQLite or PostgreSQL), so every replica
 * sees one link the same way. Every change that must happen once is one conditional
 * UPDATE whose row count says who won: one key per link, however many requests finish
 * it at once, on however many replicas.
 */
export interface LinkStore {
  insert(link: LinkRecord, tokenHash: string): Promise<void>;
  findByTokenHash(tokenHash: string): Promise<LinkRecord | undefined>;
  /** Binds the link to the first browser that opens it; false when another was first. */
  bindSession(id: string, sessionHash: string): Promise<boolean>;
  /** A new device step begins (its state replaces any earlier one). */
  startStep(id: string, stepHash: string): Promise<void>;
  /** Ends the step whose state has this hash (a refused confirmation, or its state brought back to another browser), if it is still the current one. */
  endStep(id: string, stepHash: string): Promise<void>;
  /**
   * The browser came back with the step's state: in one update the link is marked linked
   * and its session value replaced (`sessionHash` by `newSessionHash`); false when the
   * state is not the current one or the link is bound to another session by now.
   */
  finishStep(id: string, stepHash: string, at: string, sessionHash: string, newSessionHash: string): Promise<boolean>;
  /** Takes the link for one finish: true for exactly one caller, while the link is unused, unexpired at `at`, and still bound to `sessionHash`. */
  claim(id: string, at: string, outcome: 'key' | 'denied', sessionHash: string): Promise<boolean>;
  /**
   * Gives back a link claimed for a key that could not be minted (the store refused the
   * key's write): unused again, so the same browser may press Allow once more. Only a claim
   * with no key recorded is given back; true when it was.
   */
  release(id: string, sessionHash: string): Promise<boolean>;
  /** Records the key a claimed link minted. */
  recordKey(id: string, keyId: string): Promise<void>;
  /** Removes links that expired before `before` (kept a while so a late visit still says "expired"). */
  purge(before: string): Promise<number>;
}
