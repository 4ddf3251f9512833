// The connection deadlines are settings: config parses and bounds them, the server applies
// them (server/connections.ts), so their type and bound live here, below the server.

/** How long Node lets a whole request (headers and a streamed body) take; 408 past it. */
export const REQUEST_TIMEOUT_MS = 30_000;

export interface ConnectionDeadlines {
  /** From accept to a connection's first byte (and between bytes while its headers arrive). */
  readonly firstByteMs: number;
  /** From a request's first byte to the end of its headers: 408. */
  readonly headersMs: number;
}
