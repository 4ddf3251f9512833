import { KeygateError } from '../errors/keygate-error.ts';
import type { ServedHandler } from '../pipeline/served-handler.ts';
import type { KeyService } from '../keys/key-service.ts';

/**
 * The Connect flow's served routes. A placeholder until the Connect flow lands: a policy
 * that serves `connect.create-link` loads, and the route answers 404 until then.
 */
export function connectHandlers(_deps: { readonly keys: KeyService }): Array<[string, ServedHandler]> {
  return [['connect.create-link', { body: 'optional', handle: () => { throw new KeygateError('NOT_FOUND', { detail: 'connect.create-link is not built yet' }); } }]];
}
