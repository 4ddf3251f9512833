import type { ServedHandler } from '../pipeline/served-handler.ts';
import { type AdminDeps, visibleKey } from './acting.ts';
import { asApi } from './key-errors.ts';
import { listEnvelope, pageParams, queryParams } from './query.ts';

/** `GET /v1/api-keys/{id}/events`: the key's audit trail, oldest first, a page at a time. */
export function eventsHandler(deps: AdminDeps): ServedHandler {
  return {
    body: 'none',
    async handle(request) {
      const { page, perPage } = pageParams(queryParams(request.target.query, ['page', 'perPage']));
      const target = await visibleKey(deps, request);
      const { items, total } = await asApi(() => deps.keys.events(target.id, { offset: (page - 1) * perPage, limit: perPage }));
      return { status: 200, body: listEnvelope(items, page, perPage, total) };
    },
  };
}
