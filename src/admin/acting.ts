import type { KeyService } from '../keys/key-service.ts';
import type { ServedRequest } from '../pipeline/served-handler.ts';
import type { Actor } from './escalation.ts';

/** What the management API's handlers are built with. */
export interface AdminDeps {
  readonly keys: KeyService;
}

const EVRYTHNG_SHAPE = 'evrythng-access-token';

/** The route answers EVRYTHNG access tokens (`/accessTokens`) rather than Texture keys. */
export function evrythng(request: ServedRequest): boolean {
  return request.route.shape === EVRYTHNG_SHAPE;
}

/** The acting key, the policy that let it act, and the conditions of that grant. */
export function actorOf(request: ServedRequest): Actor {
  return { policy: request.policy, principal: request.principal, cap: request.decision.conditions ?? 'all' };
}

/** The actor as the audit trail names it. */
export function actorId(request: ServedRequest): string {
  return request.principal.id;
}
