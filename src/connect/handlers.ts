import { KeygateError } from '../errors/keygate-error.ts';
import { hashKey } from '../keys/key-format.ts';
import type { ServedHandler } from '../pipeline/served-handler.ts';
import type { ConnectRuntime } from './connect-runtime.ts';

/**
 * `POST /v1/connections` takes its fields in the body only; a query parameter is refused,
 * not ignored, as on the key API (`?referenceId=bob` would otherwise look as if it counted).
 */
function refuseQuery(query: string): void {
  if (query === '') return;
  const name = new URLSearchParams(query).keys().next().value ?? query;
  throw new KeygateError('INVALID_PARAMETER', { message: `${name}: unknown parameter (POST /v1/connections takes its fields in the JSON body)`, field: name });
}

/** The Connect flow's served routes: `connect.create-link` answers `POST /v1/connections` (201, Texture's shape). */
export function connectHandlers(deps: { readonly connect: ConnectRuntime }): Array<[string, ServedHandler]> {
  return [
    [
      'connect.create-link',
      {
        body: 'json',
        handle: async (r) => {
          refuseQuery(r.target.query);
          const secret = r.req.headers['texture-api-key'];
          const secretHash = typeof secret === 'string' ? hashKey(secret) : null;
          return { status: 201, body: await deps.connect.createLink(r.principal, r.body, r.decision.conditions, r.policy, secretHash) };
        },
      },
    ],
  ];
}
