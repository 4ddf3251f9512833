import type { ServedHandler } from '../pipeline/served-handler.ts';
import type { ConnectRuntime } from './connect-runtime.ts';

/** The Connect flow's served routes: `connect.create-link` answers `POST /v1/connections` (201, Texture's shape). */
export function connectHandlers(deps: { readonly connect: ConnectRuntime }): Array<[string, ServedHandler]> {
  return [
    [
      'connect.create-link',
      {
        body: 'json',
        handle: async (r) => ({ status: 201, body: await deps.connect.createLink(r.principal, r.body, r.decision.conditions, r.policy) }),
      },
    ],
  ];
}
