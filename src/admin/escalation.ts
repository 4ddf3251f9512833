import { KeygateError } from '../errors/keygate-error.ts';
import { mayChooseReferenceId } from '../keys/generated-reference.ts';
import { isPublicType, type KeyRecord } from '../keys/key-record.ts';
import { type Principal, toPrincipal } from '../keys/principal.ts';
import type { CompiledPolicy } from '../policy/model.ts';
import { firstWider, type Reach, reachesEverything } from './reach.ts';

/** Who acts, under which policy, and the conditions of the grant that let it (null: none). */
export interface Actor {
  readonly policy: CompiledPolicy;
  readonly principal: Principal;
  readonly cap: Reach;
}

function refuse(why: string, field?: string): never {
  throw new KeygateError('ESCALATION_REFUSED', { message: `no escalation: ${why}`, detail: why, ...(field === undefined ? {} : { field }) });
}

function keyConditionsWithin(target: KeyRecord, actor: Principal): boolean {
  for (const attribute in actor.conditions) {
    const mine = actor.conditions[attribute]!;
    const theirs = target.conditions[attribute];
    if (theirs === undefined || !theirs.every((v) => mine.includes(v))) return false;
  }
  return true;
}

/**
 * Invariant 12: a key may make, change or keep alive only a key whose power is within its
 * own. `target` is the key as it would be after the act (created, changed, or as it is,
 * for a rotation). Judged on:
 * - every route of the policy, as requests are judged: what the target's roles, role
 *   conditions and key conditions reach must be within what the actor's reach, and within
 *   the conditions of the actor's grant of this very action;
 * - the key conditions themselves: an actor with conditions makes keys with conditions at
 *   least as narrow, whatever their roles (so no later policy change can make such a key
 *   wider than its maker);
 * - roles the policy does not know (a later policy could give them anything);
 * - lifetime: a key that expires cannot make one that outlives it;
 * - the browser settings: a public key's origins and redirects are within its own, and
 *   only a key that reaches everything may make a key that may choose referenceIds.
 */
export function checkNoEscalation(actor: Actor, target: KeyRecord): void {
  const { policy, principal: a } = actor;
  for (const role of target.roles) {
    if (!policy.roles.has(role)) throw new KeygateError('INVALID_FIELD', { message: `roles: the policy has no role "${role}"`, field: 'roles' });
  }
  checkLivesWithin(a, target, 'it would outlive the acting key');
  if (isPublicType(a.type)) {
    const origin = target.allowedOrigins.find((o) => !a.allowedOrigins.includes(o));
    if (origin !== undefined) refuse(`origin ${origin} is not one of the acting key's`, 'allowedOrigins');
    const redirect = target.allowedRedirects.find((r) => !a.allowedRedirects.includes(r));
    if (redirect !== undefined) refuse(`redirect ${redirect} is not one of the acting key's`, 'allowedRedirects');
  }
  if (target.allowReferenceId && !mayChooseReferenceId(a)) refuse('the acting key may not choose referenceIds, so it cannot make a key that may', 'allowReferenceId');
  checkPowerWithin(actor, target);
}

/**
 * The target, or the secret it is given, ends no later than the acting secret: an expiring
 * token, or a secret in the grace period of a rotation (its end is the grace's end), cannot
 * hand itself or anyone a secret that lives on after it.
 */
function checkLivesWithin(a: Actor['principal'], target: KeyRecord, what: string): void {
  if (a.expiresAtMs === Infinity) return;
  const ends = target.expiresAt === null ? Infinity : Date.parse(target.expiresAt);
  if (ends > a.expiresAtMs) refuse(`${what}, which expires at ${new Date(a.expiresAtMs).toISOString()}`, 'expiresAt');
}

/** Why the target's power is not within the actor's (its key conditions, what it reaches on every route), or undefined when it is. */
function widerThan(actor: Actor, target: KeyRecord): { why: string; field?: string } | undefined {
  // A connect key that may choose referenceIds can, through a link it finishes itself, mint
  // a key to any user's devices: the power of a key that reaches everything, whatever its
  // own routes reach (a token granted api-keys:create and connect-link must not make one,
  // nor see, rotate or keep one alive).
  if (target.allowReferenceId && !reachesEverything(actor.policy, actor.principal, actor.cap)) {
    return { why: "a key that may choose referenceIds can get a key to any user's devices: only a key that reaches everything is above it", field: 'allowReferenceId' };
  }
  if (!keyConditionsWithin(target, actor.principal)) return { why: `its conditions would be wider than the acting key's own (${JSON.stringify(actor.principal.conditions)})`, field: 'conditions' };
  const wider = firstWider(actor.policy, toPrincipal(target), actor.principal, actor.cap);
  return wider === undefined ? undefined : { why: wider };
}

function checkPowerWithin(actor: Actor, target: KeyRecord): void {
  const wider = widerThan(actor, target);
  if (wider !== undefined) refuse(wider.why, wider.field);
}

/** Whether the actor could act on the target (checkActsOn would let it): the test of what a key may see. */
export function mayActOn(actor: Actor, target: KeyRecord): boolean {
  return target.id === actor.principal.id || widerThan(actor, target) === undefined;
}

/**
 * Revoking or rotating another key: allowed only on a key whose power is within the
 * actor's (a narrow token cannot revoke its operator, nor keep a wider key alive by
 * rotating it). A key may always revoke or rotate itself.
 */
export function checkActsOn(actor: Actor, target: KeyRecord): void {
  if (target.id === actor.principal.id) return;
  checkPowerWithin(actor, target);
}

/**
 * Rotating: as checkActsOn, and the new secret (which lives as long as its key) may not
 * outlive the acting secret. Without it an access token that expires in a minute could
 * rotate a key that never does and keep the new secret, and the old secret of a key
 * rotated with a grace period (a leaked one, say) could rotate its own key again and end up
 * with the only secret that works, for good.
 */
export function checkRotates(actor: Actor, target: KeyRecord): void {
  checkActsOn(actor, target);
  checkLivesWithin(actor.principal, target, 'its new secret would outlive the acting key');
}
