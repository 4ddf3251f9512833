import type { ServedHandler } from '../pipeline/served-handler.ts';
import { type AdminDeps, visibleKey } from './acting.ts';
import { shown } from './shapes.ts';

/** `GET /v1/api-keys/{id}`: the key object, never its secret. */
export function readHandler(deps: AdminDeps): ServedHandler {
  return {
    body: 'none',
    async handle(request) {
      return { status: 200, body: shown(request, await visibleKey(deps, request)) };
    },
  };
}
