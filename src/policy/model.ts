import type { KeyType } from '../keys/key-record.ts';
import type { ConnectSettings } from './connect-section.ts';
import type { RouteMatcher } from './matcher.ts';
import type { RateLimitSettings } from './rate-limits-section.ts';
import type { RouteTemplate } from './route-template.ts';
import type { Position } from './source.ts';

/** Where the id of the resource a condition is checked against comes from. */
export interface IdSource {
  readonly from: 'path' | 'query' | 'body' | 'response';
  readonly name: string;
}

/**
 * How a route proves a condition:
 * - filter: set the attribute as a query filter, and check every item of the list response;
 * - lookup: fetch the resource's attributes (cached) by the id from `id` before forwarding
 *   (or, for `response.*` ids, before the response reaches the client);
 * - response: read the attributes from the response body itself;
 * - none: the route cannot prove anything, so a conditioned grant never reaches it;
 * - served: Keygate answers the route itself (`serve:`), and its handler enforces the
 *   conditions the decision hands over.
 */
export type Enforcement =
  | { readonly kind: 'filter' }
  | { readonly kind: 'lookup'; readonly resource: CompiledResource; readonly id: IdSource }
  | { readonly kind: 'response' }
  | { readonly kind: 'none' }
  | { readonly kind: 'served' };

export interface CompiledRoute {
  readonly template: RouteTemplate;
  readonly resource: CompiledResource;
  readonly action: string;
  /** `resource:action`, the permission this route needs. */
  readonly permission: string;
  readonly enforcement: Enforcement;
  /**
   * A handler Keygate answers this route with (src/policy/served.ts), never forwarding it;
   * null for every forwarded route, the one check a forwarded request pays.
   */
  readonly serve: string | null;
  /** The answer shape of a served route (`evrythng-access-token`), or null for the handler's own. */
  readonly shape: string | null;
  readonly position: Position;
}

interface AttributeLookup {
  readonly template: RouteTemplate;
  readonly ttlMs: number;
}

export interface CompiledResource {
  readonly name: string;
  readonly actions: ReadonlyMap<string, readonly CompiledRoute[]>;
  readonly lookup: AttributeLookup | null;
  /** attribute -> JSON field path in a resource object (lookup answers, list items, read bodies). */
  readonly fields: ReadonlyMap<string, readonly string[]>;
  /** false when the policy declares no `fields`: any attribute maps to the field of the same name. */
  readonly fieldsDeclared: boolean;
  readonly position: Position;
}

/** A condition value: a literal, or a property of the calling key resolved per request. */
export type ValueTemplate = { readonly literal: string } | { readonly keyField: 'id' | 'referenceId' | 'type' | 'name' };

export interface RoleCondition {
  readonly attribute: string;
  readonly values: readonly ValueTemplate[];
}

export interface CompiledRole {
  readonly name: string;
  /** `*`: every action of every resource and, when unconditioned, undeclared routes too. */
  readonly all: boolean;
  /** `resource:action` and `resource:*` entries. */
  readonly grants: ReadonlySet<string>;
  readonly conditions: readonly RoleCondition[];
  readonly position: Position;
}

export interface CompiledPolicy {
  readonly matcher: RouteMatcher<CompiledRoute>;
  readonly resources: ReadonlyMap<string, CompiledResource>;
  readonly roles: ReadonlyMap<string, CompiledRole>;
  readonly keyTypes: ReadonlyMap<KeyType, readonly string[]>;
  /** How the Connect flow's hosted page finds the user's devices (the `connect:` section). */
  readonly connect: ConnectSettings;
  /** The `rateLimits:` section (src/limits/ applies it). */
  readonly rateLimits: RateLimitSettings;
  readonly files: readonly string[];
  /** Content hash of the files: shown in /readyz and logged on reload. */
  readonly version: string;
  readonly loadedAt: string;
}

export function roleGrants(role: CompiledRole, permission: string, resource: string): boolean {
  return role.all || role.grants.has(permission) || role.grants.has(resource + ':*');
}
