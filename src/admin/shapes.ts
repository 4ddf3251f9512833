import type { KeyRecord } from '../keys/key-record.ts';
import type { ServedRequest } from '../pipeline/served-handler.ts';
import { evrythng } from './acting.ts';
import { accessTokenObject, keyObject } from './key-object.ts';

/** A key as this route shows it (Texture key object, or EVRYTHNG access token). */
export function shown(request: ServedRequest, record: KeyRecord): Record<string, unknown> {
  return evrythng(request) ? accessTokenObject(record) : keyObject(record);
}

/** The same, with the secret: the one answer that carries it (`key`, or EVRYTHNG's `apiKey`). */
export function shownWithSecret(request: ServedRequest, record: KeyRecord, secret: string): Record<string, unknown> {
  return evrythng(request) ? { ...accessTokenObject(record), apiKey: secret } : { ...keyObject(record), key: secret };
}

/** Body field names of the EVRYTHNG shape that the key record calls otherwise. */
export const EVRYTHNG_NAMES: Readonly<Record<string, string>> = { roles: 'policies' };
