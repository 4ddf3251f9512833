import { KeygateError } from '../errors/keygate-error.ts';
import { isKeyType, isValidReferenceId, KEY_TYPES, type KeyType } from '../keys/key-record.ts';
import type { ServedHandler } from '../pipeline/served-handler.ts';
import { type AdminDeps, creatorScope, evrythng } from './acting.ts';
import { booleanParam, invalidParameter, listEnvelope, pageParams, queryParams } from './query.ts';
import { shown } from './shapes.ts';

const TEXTURE_PARAMS = ['page', 'perPage', 'type', 'referenceId', 'revoked'];
const EVRYTHNG_PARAMS = ['page', 'perPage'];

/**
 * `GET /v1/api-keys`: a page of keys in creation order, `{data, page, perPage, totalItems,
 * totalPages}`, by `type`, `referenceId` and `revoked`. A key with conditions sees only the
 * keys it made (acting.ts). EVRYTHNG's `GET /accessTokens`: a bare array of access tokens,
 * the total in `X-Result-Count`.
 */
export function listHandler(deps: AdminDeps): ServedHandler {
  return {
    body: 'none',
    async handle(request) {
      const e = evrythng(request);
      const params = queryParams(request.target.query, e ? EVRYTHNG_PARAMS : TEXTURE_PARAMS);
      const { page, perPage } = pageParams(params);
      const type = e ? 'access-token' : params.get('type');
      if (type !== undefined && !isKeyType(type)) invalidParameter('type', `must be one of ${KEY_TYPES.join(', ')}`);
      const referenceId = params.get('referenceId');
      if (referenceId !== undefined && !isValidReferenceId(referenceId)) invalidParameter('referenceId', 'is not a referenceId');
      const filter = { type: type as KeyType | undefined, referenceId, revoked: booleanParam(params, 'revoked'), createdBy: creatorScope(request) };
      const offset = (page - 1) * perPage;
      if (!Number.isSafeInteger(offset)) throw new KeygateError('INVALID_PARAMETER', { message: 'page: too far', field: 'page' });
      const { items, total } = await deps.keys.list({ ...filter, offset, limit: perPage });
      const data = items.map((r) => shown(request, r));
      if (e) return { status: 200, body: data, headers: { 'x-result-count': String(total) } };
      return { status: 200, body: listEnvelope(data, page, perPage, total) };
    },
  };
}
