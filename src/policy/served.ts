/**
 * Routes Keygate answers itself (`serve:` in a policy route): the management API and the
 * Connect flow. The policy knows the handlers only by name — it must not import them
 * (layers import one way) — so the names, the parameters each needs from its route and
 * the answer shapes each can speak live here; src/server/served-routes.ts maps every name
 * to its handler, and a test checks that none is missing.
 */
export const SERVED_HANDLERS = ['api-keys.list', 'api-keys.read', 'api-keys.create', 'api-keys.update', 'api-keys.revoke', 'api-keys.rotate', 'api-keys.events', 'connect.create-link'] as const;
export type ServedHandlerName = (typeof SERVED_HANDLERS)[number];

export function isServedHandler(name: string): name is ServedHandlerName {
  return (SERVED_HANDLERS as readonly string[]).includes(name);
}

/** The route parameters a handler reads: a route that serves it must have them. */
export const SERVED_PARAMS: Readonly<Record<ServedHandlerName, readonly string[]>> = {
  'api-keys.list': [],
  'api-keys.read': ['id'],
  'api-keys.create': [],
  'api-keys.update': ['id'],
  'api-keys.revoke': ['id'],
  'api-keys.rotate': ['id'],
  'api-keys.events': ['id'],
  'connect.create-link': [],
};

/**
 * Answer shapes besides a handler's own (Texture's): `evrythng-access-token` reads and
 * writes EVRYTHNG access tokens (`{name, description, policies, conditions}`, the secret
 * as `apiKey`), so a policy can declare the EVRYTHNG Access Tokens API (`/accessTokens`)
 * on the same handlers.
 */
export const SERVED_SHAPES: Readonly<Record<ServedHandlerName, readonly string[]>> = {
  'api-keys.list': ['evrythng-access-token'],
  'api-keys.read': ['evrythng-access-token'],
  'api-keys.create': ['evrythng-access-token'],
  'api-keys.update': ['evrythng-access-token'],
  'api-keys.revoke': ['evrythng-access-token'],
  'api-keys.rotate': ['evrythng-access-token'],
  'api-keys.events': [],
  'connect.create-link': [],
};
