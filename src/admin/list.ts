import { KeygateError } from '../errors/keygate-error.ts';
import { isKeyType, isValidReferenceId, KEY_TYPES, type KeyType } from '../keys/key-record.ts';
import type { ServedHandler } from '../pipeline/served-handler.ts';
import { type AdminDeps, evrythng } from './acting.ts';
import { booleanParam, invalidParameter, listEnvelope, pageParams, queryParams } from './query.ts';
import { shown } from './shapes.ts';
import { visiblePage } from './visibility.ts';

const TEXTURE_PARAMS = ['page', 'perPage', 'type', 'referenceId', 'revoked', 'createdBy'];
/** What `createdBy` holds: a key id, `link:<id>` (minted by a Connect link) or `cli`. */
const MAKER = /^(?:key_[0-9A-Za-z]{1,64}|link:[0-9A-Za-z_-]{1,64}|cli)$/;
const EVRYTHNG_PARAMS = ['page', 'perPage'];

/**
 * `GET /v1/api-keys`: a page of keys in creation order, `{data, page, perPage, totalItems,
 * totalPages}`, by `type`, `referenceId`, `revoked` and `createdBy` (what one key made: after
 * a leak, the keys to look at), of the keys the acting key sees
 * (visibility.ts). EVRYTHNG's `GET /accessTokens`: a bare array of access tokens,
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
      const createdBy = params.get('createdBy');
      if (createdBy !== undefined && !MAKER.test(createdBy)) invalidParameter('createdBy', 'is not a key id, link:<id> or cli');
      const filter = { type: type as KeyType | undefined, referenceId, revoked: booleanParam(params, 'revoked'), createdBy };
      const offset = (page - 1) * perPage;
      if (!Number.isSafeInteger(offset)) throw new KeygateError('INVALID_PARAMETER', { message: 'page: too far', field: 'page' });
      const { items, total } = await visiblePage(deps, request, filter, offset, perPage);
      const data = items.map((r) => shown(request, r));
      if (e) return { status: 200, body: data, headers: { 'x-result-count': String(total) } };
      return { status: 200, body: listEnvelope(data, page, perPage, total) };
    },
  };
}
