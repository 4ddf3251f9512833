import type { ServedHandler } from '../pipeline/served-handler.ts';
import type { AdminDeps } from './acting.ts';
import { createHandler } from './create.ts';
import { eventsHandler } from './events.ts';
import { listHandler } from './list.ts';
import { readHandler } from './read.ts';
import { revokeHandler } from './revoke.ts';
import { rotateHandler } from './rotate.ts';
import { updateHandler } from './update.ts';

/** The key management API's handlers, by the names a policy serves them with (src/policy/served.ts). */
export function adminHandlers(deps: AdminDeps): Array<[string, ServedHandler]> {
  return [
    ['api-keys.list', listHandler(deps)],
    ['api-keys.read', readHandler(deps)],
    ['api-keys.create', createHandler(deps)],
    ['api-keys.update', updateHandler(deps)],
    ['api-keys.revoke', revokeHandler(deps)],
    ['api-keys.rotate', rotateHandler(deps)],
    ['api-keys.events', eventsHandler(deps)],
  ];
}
