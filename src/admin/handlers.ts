import { KeygateError } from '../errors/keygate-error.ts';
import type { KeyService } from '../keys/key-service.ts';
import type { ServedHandler } from '../pipeline/served-handler.ts';

const NAMES = ['api-keys.list', 'api-keys.read', 'api-keys.create', 'api-keys.update', 'api-keys.revoke', 'api-keys.rotate', 'api-keys.events'];

/** The management API's handlers (placeholders until the endpoints land: 404). */
export function adminHandlers(_deps: { readonly keys: KeyService }): Array<[string, ServedHandler]> {
  return NAMES.map((name) => [name, { body: 'optional', handle: () => { throw new KeygateError('NOT_FOUND', { detail: `${name} is not built yet` }); } }]);
}
