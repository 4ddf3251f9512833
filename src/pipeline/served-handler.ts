import type { IncomingMessage } from 'node:http';
import type { Principal } from '../keys/principal.ts';
import type { CompiledPolicy, CompiledRoute } from '../policy/model.ts';
import type { Decision } from './authorize.ts';
import type { Target } from './canonical-path.ts';

/**
 * A route Keygate answers itself (`serve:` in the policy): the management API
 * (src/admin/) and the Connect flow (src/connect/). The proxy handler authorizes the
 * request as any other (the route's permission), then, instead of forwarding it, reads
 * the body the handler asks for and hands over this request; the handler's answer, or
 * the KeygateError it throws, is written by the proxy handler like every other answer
 * (one renderer, one access line, the metrics).
 */
export interface ServedRequest {
  readonly req: IncomingMessage;
  readonly principal: Principal;
  /**
   * The route, its parameters and, when the granting role or the key carries them, the
   * conditions: on a served route they are the handler's to enforce (decide() hands them
   * over rather than refusing them as unprovable).
   */
  readonly decision: Decision;
  readonly route: CompiledRoute;
  /** The policy that decided, for handlers that judge other keys by it (no escalation). */
  readonly policy: CompiledPolicy;
  readonly target: Target;
  readonly requestId: string;
  /** The body parsed as strict JSON (see ServedHandler.body); undefined when there is none. */
  readonly body: unknown;
}

export interface ServedAnswer {
  readonly status: number;
  /** Serialised as JSON; absent for an answer without a body (204). */
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface ServedHandler {
  /**
   * What the handler reads: `json`, a JSON body (required); `optional`, a JSON body or
   * none; `none`, no body (one is 400 BODY_NOT_ALLOWED). A body is read bounded by
   * `--max-body` and `--body-timeout`, must be uncompressed `application/json`, and is
   * parsed strictly (duplicate and look-alike keys refused), as bodies the policy reads are.
   */
  readonly body: 'json' | 'optional' | 'none';
  handle(request: ServedRequest): ServedAnswer | Promise<ServedAnswer>;
}
