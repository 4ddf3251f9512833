import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { ServeConfig } from '../config/serve-config.ts';
import { KeygateError } from '../errors/keygate-error.ts';
import { mayChooseReferenceId } from '../keys/generated-reference.ts';
import { inactiveAt } from '../keys/key-record.ts';
import type { KeyService } from '../keys/key-service.ts';
import { KeyInputError } from '../keys/mint-key.ts';
import { type Principal, toPrincipal } from '../keys/principal.ts';
import type { WriteGuard } from '../keys/store.ts';
import type { CompiledPolicy } from '../policy/model.ts';
import type { PolicyHolder } from '../policy/policy-holder.ts';
import { checkChosenUser, type MakerJudge } from './chosen-user.ts';
import { ConnectPages } from './connect-pages.ts';
import { type CreatedLink, createLink, mayRedirectTo } from './create-link.ts';
import { LinkFlow, type LinkMaker, MakerChangedError } from './link-flow.ts';
import { mayMakeLinks } from './link-permission.ts';
import { parseLinkRequest } from './link-request.ts';
import type { LinkRecord } from './link-store.ts';
import type { ClosableLinkStore } from './open-link-store.ts';
import { parseRedirect } from './redirect-url.ts';

export interface ConnectDeps {
  readonly config: Pick<ServeConfig, 'publicUrl' | 'connectLinkTtlMs'>;
  /** The links table of the key store (open-link-store.ts); closed with the runtime. */
  readonly links: ClosableLinkStore;
  readonly keys: KeyService;
  readonly policy: PolicyHolder;
  /** The backend (with the lookup admission share), for a referenceId's devices. */
  readonly upstream: Dispatcher;
  readonly logger: Logger;
  /** Judges the scoped key a link that names its user would mint, as the management API would (checkChosenUser). */
  readonly judge: MakerJudge;
}

/**
 * The Connect flow of one serve process: the link store, the served route that creates
 * links (`connect.create-link`) and the hosted pages that finish them, sharing one store
 * connection. Off the forwarding path entirely: nothing here runs for a forwarded request.
 */
export class ConnectRuntime {
  readonly links: ClosableLinkStore;
  readonly pages: ConnectPages;
  readonly #deps: ConnectDeps;
  #publicUrl: string;

  constructor(deps: ConnectDeps) {
    this.#deps = deps;
    this.#publicUrl = deps.config.publicUrl.replace(/\/+$/, '');
    this.links = deps.links;
    this.pages = new ConnectPages(
      new LinkFlow({
        links: this.links,
        policy: deps.policy,
        upstream: deps.upstream,
        publicUrl: () => this.#publicUrl,
        maker: (link) => this.#maker(link),
        mint: (link, maker) => this.#mint(link, maker),
        logger: deps.logger,
      }),
    );
  }

  /**
   * The default --public-url is the listen address; when that names port 0, the port is
   * known only once the listener is bound (serve calls this then).
   */
  boundAt(port: number): void {
    if (/:0$/.test(this.#publicUrl)) this.#publicUrl = this.#publicUrl.replace(/:0$/, `:${port}`);
  }

  /** `POST /v1/connections`: the caller is authorized for `connections:create` by the policy already. */
  /** `secretHash`: the hash of the secret the request presented (the link is bound to it, see LinkRecord). */
  async createLink(principal: Principal, body: unknown, conditions: unknown, policy: CompiledPolicy, secretHash: string | null): Promise<CreatedLink> {
    // Conditions on a served route are the handler's to prove; a link has no attribute to prove them on.
    if (conditions !== null) throw new KeygateError('RESOURCE_NOT_ALLOWED', { detail: 'a key with conditions may not create Connect links' });
    const request = parseLinkRequest(body);
    if (request.referenceId !== null) checkChosenUser(this.#deps.judge, principal, policy, request.referenceId);
    return createLink(this.links, this.#publicUrl, this.#deps.config.connectLinkTtlMs, principal, request, secretHash);
  }

  /**
   * The key that made the link, judged again now, as it is and under the policy in force:
   * null (the link mints nothing) when it is revoked, expired or gone, or when it may no
   * longer make this key: the judgement at the link's creation does not outlast a change
   * to the maker (invariant 12: no key keeps alive a power it lost). The minted key takes
   * its maker's current origins and expires no later than its maker.
   */
  async #maker(link: LinkRecord): Promise<LinkMaker | null> {
    const maker = await this.#deps.keys.get(link.createdBy);
    if (maker === undefined || inactiveAt(maker, Date.now()) !== null) return null;
    // The secret that made the link must still work; the key ends no later than it.
    let expiresAt = maker.expiresAt;
    if (link.makerSecretHash !== null) {
      const secret = await this.#deps.keys.store.findByHash(link.makerSecretHash);
      if (secret === undefined || secret.id !== maker.id) return null;
      if (secret.secretExpiresAt !== null) {
        if (Date.parse(secret.secretExpiresAt) <= Date.now()) return null;
        if (expiresAt === null || secret.secretExpiresAt < expiresAt) expiresAt = secret.secretExpiresAt;
      }
    }
    const redirect = parseRedirect(link.redirectUrl);
    if (typeof redirect === 'string' || !mayRedirectTo(maker, redirect)) return null;
    const principal = toPrincipal(maker);
    if (!mayMakeLinks(this.#deps.policy.current, principal)) return null;
    if (link.referenceChosen) {
      if (!mayChooseReferenceId(principal)) return null;
      try {
        checkChosenUser(this.#deps.judge, principal, this.#deps.policy.current, link.referenceId);
      } catch (err) {
        // Refused, or the key it would make cannot be made now (its maker's expiry just passed): fail closed.
        if (err instanceof KeygateError || err instanceof KeyInputError) return null;
        throw err;
      }
    }
    return { expiresAt, allowedOrigins: maker.allowedOrigins, updatedAt: maker.updatedAt };
  }

  /**
   * The link's one scoped key, through the key service (audit event by `link:<id>`), with
   * the origins of the key that made the link, expiring no later than that key.
   */
  async #mint(link: LinkRecord, maker: LinkMaker): Promise<{ id: string; key: string }> {
    // Judged inside the write too: the maker revoked, rotated or changed while the mint waited
    // for the store's lock (up to 5 s) mints nothing.
    const guard: WriteGuard = {
      actorId: link.createdBy,
      check(now) {
        if (now === undefined || inactiveAt(now, Date.now()) !== null || now.updatedAt !== maker.updatedAt) throw new MakerChangedError(link.id);
      },
    };
    const { record, key } = await this.#deps.keys.create(
      { type: 'scoped', referenceId: link.referenceId, allowedOrigins: maker.allowedOrigins, linkId: link.id, expiresAt: maker.expiresAt },
      `link:${link.id}`,
      undefined,
      guard,
    );
    return { id: record.id, key };
  }

  close(): Promise<void> {
    return this.links.close();
  }
}
