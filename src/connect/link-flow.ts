import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { KeygateError, sharedRefusal } from '../errors/keygate-error.ts';
import { readBody } from '../pipeline/proving/request-body.ts';
import { deviceStepUrl } from '../policy/connect-section.ts';
import type { PolicyHolder } from '../policy/policy-holder.ts';
import { scopedAbilities } from './abilities.ts';
import { devicesOf } from './backend-devices.ts';
import { sendPage } from './connect-pages.ts';
import type { LinkPages } from './link-pages.ts';
import { csrfToken, issuedSessions, issueSession, newSecret, sameSecret, sessionCookie, sha256 } from './link-session.ts';
import type { LinkRecord, LinkStore } from './link-store.ts';
import type { RenderedPage } from './pages/layout.ts';
import { consentPage, type GoneReason, gonePage, handBackPage, noDevicesPage, notAFormPage, notNowPage, otherBrowserPage, stepNotConfirmedPage } from './pages/views.ts';
import type { PublicAnswer } from './public-routes.ts';
import { parseRedirect, type RedirectTarget, redirectWith } from './redirect-url.ts';
import { confirmStep } from './step-confirm.ts';

export interface LinkFlowDeps {
  readonly links: LinkStore;
  readonly policy: PolicyHolder;
  /** The backend, for the devices of a referenceId (server to server). */
  readonly upstream: Dispatcher;
  /** `--public-url`, without a trailing slash (read per request: a listener on port 0 knows its port only once bound). */
  readonly publicUrl: () => string;
  /** The key that made the link while it is active (null: revoked, expired or gone, so the link mints nothing). */
  readonly maker: (link: LinkRecord) => Promise<LinkMaker | null>;
  /** Mints the link's one scoped key (through the key service), within its maker's life; the plaintext goes to the browser only. */
  readonly mint: (link: LinkRecord, maker: LinkMaker) => Promise<{ id: string; key: string }>;
  readonly logger: Logger;
}

/** The key that made a link was revoked, rotated or changed while the link's key was being minted. */
export class MakerChangedError extends Error {
  override readonly name = 'MakerChangedError';
  constructor(linkId: string) {
    super(`the maker of ${linkId} changed while its key was minted`);
  }
}

/** What a link's key inherits from the key that made the link. */
export interface LinkMaker {
  readonly expiresAt: string | null;
  /** The maker's origins as they are now (not as they were when the link was made). */
  readonly allowedOrigins: readonly string[];
  /** The maker's row as judged (its updatedAt): the mint writes only while it is still that row. */
  readonly updatedAt: string;
}

const FORM_MAX_BYTES = 4096;
/** How often a link whose give-back the store refused is given back again. */
const RELEASE_RETRY_MS = 1_000;
const FORM_TIMEOUT_MS = 5_000;

const GONE_CODES: Record<GoneReason, KeygateError> = {
  used: sharedRefusal('LINK_GONE', 'link already used'),
  expired: sharedRefusal('LINK_GONE', 'link expired'),
  unknown: sharedRefusal('LINK_GONE', 'no link with this token'),
};
const MAKER_GONE = sharedRefusal('LINK_GONE', 'the key that made the link is revoked, expired or gone');
const NOT_NOW = sharedRefusal('STORE_UNAVAILABLE', 'the key could not be written; the link is unused and may be finished again');
const MISMATCH = sharedRefusal('LINK_SESSION_MISMATCH', 'no or another browser session for this link');
const BAD_CSRF = sharedRefusal('LINK_SESSION_MISMATCH', 'the form carries no valid CSRF token');
const BAD_STEP = sharedRefusal('LINK_SESSION_MISMATCH', 'the device step came back with a state that is not the current one');
const NOT_CONFIRMED = sharedRefusal('DEVICE_STEP_NOT_CONFIRMED', 'the backend did not confirm the device step');
const BAD_FORM = sharedRefusal('LINK_SESSION_MISMATCH', "the form is not one of the page's");

function send(res: ServerResponse, page: RenderedPage, requestId: string, failure?: KeygateError): PublicAnswer {
  sendPage(res, page, requestId);
  return { status: page.status, failure };
}

function seeOther(res: ServerResponse, location: string, requestId: string, headers: Record<string, string> = {}): PublicAnswer {
  res.writeHead(303, { location, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer', 'content-length': 0, 'x-request-id': requestId, ...headers });
  res.end();
  return { status: 303 };
}

/**
 * The hosted pages of a link: GET shows it, POST is its forms (link devices, allow,
 * cancel), GET …/return is where the backend's device step sends the browser back.
 * Nothing here writes a token or a key to a log: the access line shows the route
 * template, refusals carry codes and fixed details.
 */
export class LinkFlow implements LinkPages {
  readonly #d: LinkFlowDeps;
  /**
   * The finish of a link in progress in this process, by link id. A second finish of the
   * same link waits for it, then finds the link used (410) without asking the backend for
   * devices: a burst of posts of one link costs one device query, not one each, and is
   * not refused by the backend share a link's maker may hold (invariant 11). Across
   * replicas, the store's claim still lets exactly one finish mint.
   */
  readonly #finishing = new Map<string, Promise<unknown>>();

  constructor(deps: LinkFlowDeps) {
    this.#d = deps;
  }

  async answer(req: IncomingMessage, res: ServerResponse, token: string, isReturn: boolean, requestId: string): Promise<PublicAnswer> {
    const method = req.method ?? 'GET';
    const link = await this.#d.links.findByTokenHash(sha256(token));
    const gone = this.#goneReason(link);
    if (gone !== null) return send(res, gonePage(gone), requestId, GONE_CODES[gone]);
    // Every page and step, not only the finish: a link whose maker (or the secret that made
    // it) is revoked, rotated away or no longer allowed neither shows the user's devices nor
    // starts the device step.
    if ((await this.#d.maker(link!)) === null) return send(res, gonePage('unknown'), requestId, MAKER_GONE);
    const query = new URLSearchParams((req.url ?? '').split('?')[1] ?? '');
    if (isReturn) return method === 'GET' ? this.#returned(req, res, link!, token, query, requestId) : this.#notAForm(res, requestId);
    if (method === 'GET' || method === 'HEAD') return this.#show(req, res, link!, token, query.get('display') === 'popup', requestId);
    if (method === 'POST') return this.#post(req, res, link!, token, requestId);
    return this.#notAForm(res, requestId);
  }

  #goneReason(link: LinkRecord | undefined): GoneReason | null {
    if (link === undefined) return 'unknown';
    if (link.usedAt !== null) return 'used';
    if (Date.parse(link.expiresAt) <= Date.now()) return 'expired';
    return null;
  }

  #notAForm(res: ServerResponse, requestId: string): PublicAnswer {
    return send(res, notAFormPage(), requestId, BAD_FORM);
  }

  #secure(): boolean {
    return this.#d.publicUrl().startsWith('https:');
  }

  /**
   * The path of `--public-url` (`/keygate` of `https://api.example.com/keygate`): the prefix
   * under which browsers see Keygate when an ingress strips it before Keygate. The pages'
   * own URLs (the form, the hand-back script, the cookie's path) carry it, as the link URL does.
   */
  #prefix(): string {
    return new URL(this.#d.publicUrl()).pathname.replace(/\/+$/, '');
  }

  /** The session values Keygate issued for this link that the request's cookies hold (any other value is ignored). */
  #presented(req: IncomingMessage, link: LinkRecord): string[] {
    return issuedSessions(req.headers.cookie, link.id, link.sessionKey, this.#secure());
  }

  /** The presented value the link is bound to, if any. */
  #boundOf(presented: readonly string[], sessionHash: string): string | undefined {
    return presented.find((v) => sameSecret(sha256(v), sessionHash));
  }

  #cookie(link: LinkRecord, value: string): string {
    return sessionCookie(link.id, value, this.#secure(), (Date.parse(link.expiresAt) - Date.now()) / 1000, this.#prefix());
  }

  /**
   * The session value of this browser for a page view, or null when the link is another
   * browser's. A view changes nothing in the store: a browser that holds no value Keygate
   * issued for the link gets a fresh one in a cookie, and the link is bound to a browser by
   * its first form post (#bound). So a link scanner or a chat preview fetching the URL
   * first does not take the link.
   */
  #viewSession(req: IncomingMessage, link: LinkRecord): { secret: string; cookie: string | null } | null {
    const presented = this.#presented(req, link);
    if (link.sessionHash !== null) {
      const bound = this.#boundOf(presented, link.sessionHash);
      return bound === undefined ? null : { secret: bound, cookie: null };
    }
    const last = presented.at(-1);
    if (last !== undefined) return { secret: last, cookie: null };
    const secret = issueSession(link.sessionKey, link.id);
    return { secret, cookie: this.#cookie(link, secret) };
  }

  /** Binds the link to the session `value` if it is bound to none yet; whether it is bound to `value` now. */
  async #bound(link: LinkRecord, value: string, tokenHash: string): Promise<boolean> {
    const hash = sha256(value);
    if (link.sessionHash !== null) return sameSecret(hash, link.sessionHash);
    if (await this.#d.links.bindSession(link.id, hash)) return true;
    // Another request bound it first: this browser's own (a double click), or another's.
    const now = await this.#d.links.findByTokenHash(tokenHash);
    return now?.sessionHash != null && sameSecret(hash, now.sessionHash);
  }

  #redirect(link: LinkRecord): RedirectTarget {
    const target = parseRedirect(link.redirectUrl);
    if (typeof target === 'string') throw new KeygateError('INTERNAL_ERROR', { detail: `stored redirect of link ${link.id} ${target}` });
    return target;
  }

  #action(token: string): string {
    return `${this.#prefix()}/connect/links/${token}`;
  }

  #formTargets(link: LinkRecord): string[] {
    const out = [this.#redirect(link).formTarget];
    const step = this.#d.policy.current.connect.deviceStep;
    if (step !== null) out.push(new URL(step.replace(/\{[^{}]*\}/g, 'x')).origin);
    return out;
  }

  async #show(req: IncomingMessage, res: ServerResponse, link: LinkRecord, token: string, popup: boolean, requestId: string): Promise<PublicAnswer> {
    const session = this.#viewSession(req, link);
    if (session === null) return send(res, otherBrowserPage(), requestId, MISMATCH);
    const policy = this.#d.policy.current;
    const offerLinking = policy.connect.deviceStep !== null && link.linkedAt === null;
    const devices = offerLinking ? null : await devicesOf(this.#d.upstream, policy.connect.devicesPath, link.referenceId, link, requestId);
    const csrf = csrfToken(link.sessionKey, session.secret);
    const cookie = session.cookie === null ? {} : { headers: { 'set-cookie': session.cookie } };
    if (devices !== null && devices.length === 0 && policy.connect.deviceStep !== null) {
      return send(res, noDevicesPage({ action: this.#action(token), csrf, popup, formTargets: this.#formTargets(link), ...cookie }), requestId);
    }
    const page = consentPage({
      clientName: link.clientName,
      abilities: scopedAbilities(policy),
      returnTo: this.#redirect(link).display,
      devices,
      offerLinking,
      action: this.#action(token),
      csrf,
      popup,
      formTargets: this.#formTargets(link),
      ...cookie,
    });
    return send(res, page, requestId);
  }

  async #post(req: IncomingMessage, res: ServerResponse, link: LinkRecord, token: string, requestId: string): Promise<PublicAnswer> {
    // A form of Keygate's own page is posted from Keygate's origin, or as `null`: the page's
    // Referrer-Policy no-referrer makes browsers send `Origin: null` (Fetch §3.2.5). Any
    // other origin is another site's form; the CSRF token below is the check that counts.
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== 'null' && origin !== new URL(this.#d.publicUrl()).origin) return send(res, otherBrowserPage(), requestId, BAD_CSRF);
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/x-www-form-urlencoded') return this.#notAForm(res, requestId);
    const form = new URLSearchParams((await readBody(req, FORM_MAX_BYTES, FORM_TIMEOUT_MS)).toString('utf8'));
    const presented = this.#presented(req, link);
    if (presented.length === 0) return send(res, otherBrowserPage(), requestId, MISMATCH);
    // The CSRF token first: a post that is not from this browser's page binds nothing.
    const csrf = form.get('csrf');
    const secret = csrf === null ? undefined : presented.find((v) => sameSecret(csrf, csrfToken(link.sessionKey, v)));
    if (secret === undefined) return send(res, otherBrowserPage(), requestId, BAD_CSRF);
    if (!(await this.#bound(link, secret, sha256(token)))) return send(res, otherBrowserPage(), requestId, MISMATCH);
    const popup = form.get('display') === 'popup';
    const action = form.get('action');
    if (action === 'link') return this.#startStep(res, link, token, popup, requestId);
    if (action === 'allow') return this.#oneAtATime(link, token, res, requestId, () => this.#allow(res, link, token, secret, popup, requestId));
    if (action === 'deny') return this.#deny(res, link, secret, popup, requestId);
    return this.#notAForm(res, requestId);
  }

  async #startStep(res: ServerResponse, link: LinkRecord, token: string, popup: boolean, requestId: string): Promise<PublicAnswer> {
    const policy = this.#d.policy.current;
    const template = policy.connect.deviceStep;
    if (template === null) return this.#notAForm(res, requestId);
    const state = newSecret();
    await this.#d.links.startStep(link.id, sha256(state));
    const returnUrl = this.#returnUrl(token, popup);
    const manufacturers = link.manufacturerFilters === null ? '' : [...new Set(Object.values(link.manufacturerFilters).flat())].join(',');
    return seeOther(res, deviceStepUrl(template, { referenceId: link.referenceId, returnUrl, state, manufacturers }), requestId);
  }

  async #returned(req: IncomingMessage, res: ServerResponse, link: LinkRecord, token: string, query: URLSearchParams, requestId: string): Promise<PublicAnswer> {
    // The step began with a form post, which bound the link to this browser.
    const bound = link.sessionHash === null ? undefined : this.#boundOf(this.#presented(req, link), link.sessionHash);
    const state = query.get('state');
    const current = state !== null && link.stepHash !== null && sha256(state) === link.stepHash;
    if (bound === undefined) {
      // The step's own state, back in a browser the link is not bound to: the step URL was
      // handed to someone else. The step ends here, so that address (and the code in it)
      // is worth nothing to whoever started the link, should it reach them.
      if (current) await this.#d.links.endStep(link.id, link.stepHash!);
      return send(res, otherBrowserPage(), requestId, MISMATCH);
    }
    if (!current) return send(res, otherBrowserPage(), requestId, BAD_STEP);
    const popup = query.get('display') === 'popup';
    // With a confirmation the step linked nothing yet: the devices are linked only now, for
    // the code that came back to this browser (a step URL handed to someone else brings
    // their code to their browser, which the link is not bound to).
    const confirm = this.#d.policy.current.connect.deviceStepConfirm;
    if (confirm !== null) {
      const code = query.get('code');
      if (code === null || code === '') return send(res, otherBrowserPage(), requestId, BAD_STEP);
      const step = { referenceId: link.referenceId, code, state, returnUrl: this.#returnUrl(token, popup) };
      if (!(await confirmStep(this.#d.upstream, confirm, step, link, requestId))) {
        // One guess per step: a refused code ends it, and Try again starts another (with a new state).
        await this.#d.links.endStep(link.id, sha256(state));
        return send(res, stepNotConfirmedPage({ action: this.#action(token), csrf: csrfToken(link.sessionKey, bound), popup, formTargets: this.#formTargets(link) }), requestId, NOT_CONFIRMED);
      }
    }
    // The user has just signed in at the backend: the session value is replaced in the same
    // update, so whoever else knew the old one (a cookie planted before the step) is locked out.
    const fresh = issueSession(link.sessionKey, link.id);
    if (!(await this.#d.links.finishStep(link.id, sha256(state), new Date().toISOString(), sha256(bound), sha256(fresh)))) {
      return send(res, otherBrowserPage(), requestId, BAD_STEP);
    }
    // Post/redirect/get: the page with the devices now linked, at the link's own address.
    return seeOther(res, this.#action(token) + (popup ? '?display=popup' : ''), requestId, { 'set-cookie': this.#cookie(link, fresh) });
  }

  /** Where the device step sends the browser back (also what a confirmation names). */
  #returnUrl(token: string, popup: boolean): string {
    return `${this.#d.publicUrl()}/connect/links/${token}/return${popup ? '?display=popup' : ''}`;
  }

  /** Runs `finish` once no other finish of the link is in progress here; one that used the link leaves the next a 410. */
  async #oneAtATime(link: LinkRecord, token: string, res: ServerResponse, requestId: string, finish: () => Promise<PublicAnswer>): Promise<PublicAnswer> {
    for (let before = this.#finishing.get(link.id); before !== undefined; before = this.#finishing.get(link.id)) {
      await before.catch(() => undefined);
      const gone = this.#goneReason(await this.#d.links.findByTokenHash(sha256(token)));
      if (gone !== null) return send(res, gonePage(gone), requestId, GONE_CODES[gone]);
    }
    const done = finish();
    this.#finishing.set(link.id, done);
    try {
      return await done;
    } finally {
      if (this.#finishing.get(link.id) === done) this.#finishing.delete(link.id);
    }
  }

  async #allow(res: ServerResponse, link: LinkRecord, token: string, secret: string, popup: boolean, requestId: string): Promise<PublicAnswer> {
    const policy = this.#d.policy.current;
    if (policy.connect.deviceStep !== null && link.linkedAt === null) return this.#notAForm(res, requestId);
    // Server to server, at the moment of minting: the key is for a user who has devices.
    const devices = await devicesOf(this.#d.upstream, policy.connect.devicesPath, link.referenceId, link, requestId);
    if (devices.length === 0) {
      if (policy.connect.deviceStep === null) return this.#notAForm(res, requestId);
      return send(res, noDevicesPage({ action: this.#action(token), csrf: csrfToken(link.sessionKey, secret), popup, formTargets: this.#formTargets(link) }), requestId);
    }
    if ((await this.#d.maker(link)) === null) return send(res, gonePage('unknown'), requestId, MAKER_GONE);
    if (!(await this.#d.links.claim(link.id, new Date().toISOString(), 'key', sha256(secret)))) return send(res, gonePage('used'), requestId, GONE_CODES.used);
    // Judged again once the link is taken: the claim may have waited for the store (a lock
    // held up to 5 s), and a revocation of the maker that committed meanwhile must count.
    const maker = await this.#d.maker(link);
    if (maker === null) {
      await this.#d.links.release(link.id, sha256(secret)).catch(() => false);
      return send(res, gonePage('unknown'), requestId, MAKER_GONE);
    }
    let minted: { id: string; key: string };
    try {
      minted = await this.#d.mint(link, maker);
    } catch (err) {
      // The store refused the key (busy past its wait, a failed write): the link is given
      // back rather than left used with no key, and the user may press Allow again.
      const released = await this.#d.links.release(link.id, sha256(secret)).then(
        () => true,
        () => false,
      );
      this.#d.logger.warn({ linkId: link.id, released, err: (err as Error).message }, 'Connect link finish: the scoped key could not be minted');
      if (err instanceof MakerChangedError) return send(res, gonePage('unknown'), requestId, MAKER_GONE);
      // The store refused the give-back too (still locked, still failing): it is tried again
      // until it lands or the link expires, so the page's Try again works once the store does.
      if (!released) this.#releaseLater(link, sha256(secret));
      return send(res, notNowPage({ action: this.#action(token), csrf: csrfToken(link.sessionKey, secret), popup, formTargets: this.#formTargets(link) }), requestId, NOT_NOW);
    }
    // The key is made and carries the link's id; the link's own note of it is bookkeeping,
    // and its failure does not keep from the user a key that now exists.
    await this.#d.links
      .recordKey(link.id, minted.id)
      .catch((err: Error) => this.#d.logger.warn({ linkId: link.id, keyId: minted.id, err: err.message }, 'Connect link finish: the key minted was not noted on the link'));
    this.#d.logger.info({ linkId: link.id, keyId: minted.id, referenceId: link.referenceId, createdBy: link.createdBy }, 'Connect link finished: scoped key minted');
    return this.#deliver(res, link, { texture_scoped_key: minted.key }, popup, requestId);
  }

  /** Gives a claimed link with no key back once the store takes the write, every second until the link expires. */
  #releaseLater(link: LinkRecord, sessionHash: string): void {
    const attempt = (): void => {
      if (Date.parse(link.expiresAt) <= Date.now()) return;
      this.#d.links.release(link.id, sessionHash).then(
        (released) => this.#d.logger.info({ linkId: link.id, released }, 'Connect link given back after a failed finish'),
        () => setTimeout(attempt, RELEASE_RETRY_MS).unref(),
      );
    };
    setTimeout(attempt, RELEASE_RETRY_MS).unref();
  }

  async #deny(res: ServerResponse, link: LinkRecord, secret: string, popup: boolean, requestId: string): Promise<PublicAnswer> {
    if (!(await this.#d.links.claim(link.id, new Date().toISOString(), 'denied', sha256(secret)))) return send(res, gonePage('used'), requestId, GONE_CODES.used);
    return this.#deliver(res, link, { error: 'access_denied' }, popup, requestId);
  }

  /** To the registered redirect: by 303 with the outcome in its query, or, in the SDK's popup, by postMessage to its exact origin. */
  #deliver(res: ServerResponse, link: LinkRecord, outcome: { texture_scoped_key?: string; error?: string }, popup: boolean, requestId: string): PublicAnswer {
    const target = this.#redirect(link);
    const location = redirectWith(target, { texture_scoped_key: outcome.texture_scoped_key ?? null, error: outcome.error ?? null, state: link.state });
    if (popup && target.origin !== null) {
      return send(
        res,
        handBackPage({
          targetOrigin: target.origin,
          ...(outcome.texture_scoped_key === undefined ? {} : { scopedKey: outcome.texture_scoped_key }),
          ...(outcome.error === undefined ? {} : { error: outcome.error }),
          state: link.state,
          fallbackUrl: location,
          script: `${this.#prefix()}/connect/handback.js`,
        }),
        requestId,
      );
    }
    return seeOther(res, location, requestId);
  }
}
