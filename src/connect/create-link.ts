import { KeygateError } from '../errors/keygate-error.ts';
import { generatedReferenceId, mayChooseReferenceId, uuidv7 } from '../keys/generated-reference.ts';
import type { KeyType } from '../keys/key-record.ts';
import type { LinkRequest } from './link-request.ts';
import { newSecret, sha256 } from './link-session.ts';
import type { LinkRecord, LinkStore } from './link-store.ts';
import { newLinkToken } from './link-token.ts';
import { isRegistered, type RedirectTarget } from './redirect-url.ts';

/** The key asking for a link, as far as the rules below need it. */
export interface LinkCreator {
  readonly id: string;
  readonly type: KeyType;
  readonly allowedOrigins: readonly string[];
  readonly allowedRedirects: readonly string[];
  readonly allowReferenceId: boolean;
  /** When the presenting secret stops working (epoch ms, or Infinity): a link lives no longer. */
  readonly expiresAtMs: number;
}

export interface CreatedLink {
  readonly id: string;
  readonly linkToken: string;
  readonly linkUrl: string;
  readonly referenceId: string;
  readonly expiresAt: string;
}

/** Keys that live in pages and apps, where anyone can read them (Texture's documentation: connect keys "are alright to be used publicly"). */
function isPublic(type: KeyType): boolean {
  return type === 'connect' || type === 'scoped';
}

/**
 * Whether the key may have a link deliver to `target`: one registered on it, or, for a
 * secret key, any `https` URL. Judged when the link is made and again when it is
 * finished, so a redirect taken off the key (its domain lost, say) gets no key from a
 * link made before.
 */
export function mayRedirectTo(creator: Pick<LinkCreator, 'type' | 'allowedRedirects'>, target: RedirectTarget): boolean {
  return isRegistered(target, creator.allowedRedirects) || (!isPublic(creator.type) && target.url.protocol === 'https:');
}

/** Links expired this long ago are removed (a late visit meanwhile still hears "expired"). */
const KEEP_EXPIRED_MS = 86_400_000;
const PURGE_EVERY = 100;
let created = 0;

/**
 * Who may get a key for whom (invariant 12):
 * - the redirect: a public key may send the user (and so the key) only to a URL
 *   registered on it; a secret key also to any `https` URL (its holder is the app's backend);
 * - the referenceId: a public key is readable by anyone, who could otherwise ask for a
 *   link for someone else's id and, if that user finished it, receive a key to their
 *   devices. It may choose one only when created with `--allow-reference-id`; otherwise
 *   the link gets a fresh `texture-generated:<uuidv7>`. A secret key may set any.
 */
export async function createLink(links: LinkStore, publicUrl: string, ttlMs: number, creator: LinkCreator, request: LinkRequest, secretHash: string | null): Promise<CreatedLink> {
  if (!mayRedirectTo(creator, request.redirect)) {
    throw new KeygateError('REDIRECT_NOT_ALLOWED', {
      detail: isPublic(creator.type) ? "redirectUrl is not on the key's --allow-redirect list" : "redirectUrl is neither on the key's list nor https",
    });
  }
  if (request.referenceId !== null && !mayChooseReferenceId(creator)) {
    throw new KeygateError('REFERENCE_ID_NOT_ALLOWED', { detail: 'the key was not created with --allow-reference-id' });
  }
  const now = Date.now();
  const linkToken = newLinkToken();
  const link: LinkRecord = {
    id: `link_${uuidv7(now).replaceAll('-', '')}`,
    createdBy: creator.id,
    makerSecretHash: secretHash,
    referenceId: request.referenceId ?? generatedReferenceId(),
    referenceChosen: request.referenceId !== null,
    clientName: request.clientName,
    redirectUrl: request.redirect.url.href,
    state: request.state,
    tags: request.tags,
    customerInfo: request.customerInfo,
    manufacturerFilters: request.manufacturerFilters,
    allowedOrigins: creator.allowedOrigins,
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(Math.min(now + ttlMs, creator.expiresAtMs)).toISOString(),
    sessionKey: newSecret(),
    sessionHash: null,
    stepHash: null,
    linkedAt: null,
    usedAt: null,
    outcome: null,
    keyId: null,
  };
  await links.insert(link, sha256(linkToken));
  if (++created % PURGE_EVERY === 0) void links.purge(new Date(now - KEEP_EXPIRED_MS).toISOString()).catch(() => undefined);
  return { id: link.id, linkToken, linkUrl: `${publicUrl}/connect/links/${linkToken}`, referenceId: link.referenceId, expiresAt: link.expiresAt };
}
