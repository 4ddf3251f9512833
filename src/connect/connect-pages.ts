import type { IncomingMessage, ServerResponse } from 'node:http';
import { KeygateError, sharedRefusal } from '../errors/keygate-error.ts';
import { renderError } from '../errors/render.ts';
import { foldCase } from '../util/fold-case.ts';
import type { LinkPages } from './link-pages.ts';
import type { RenderedPage } from './pages/layout.ts';
import { CONNECT_PREFIX, type PublicAnswer, type PublicRoutes } from './public-routes.ts';
import { HANDBACK, SDK, sendScript } from './static-assets.ts';

const NO_PAGE = sharedRefusal('NOT_FOUND', "no page of Keygate's under /connect/ here (never forwarded)");
const SCRIPT_METHOD = Object.freeze(new KeygateError('METHOD_NOT_ALLOWED', { detail: 'the Connect scripts take GET and HEAD', headers: { allow: 'GET, HEAD' } }));

const LINK = /^\/connect\/links\/([A-Za-z0-9_-]{1,128})(\/return)?$/;

export function sendPage(res: ServerResponse, page: RenderedPage, requestId: string): void {
  res.writeHead(page.status, { ...page.headers, 'content-length': Buffer.byteLength(page.body), 'x-request-id': requestId });
  res.end(page.body);
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** Everything under /connect/: the SDK, the popup's hand-back script, the hosted link pages. */
export class ConnectPages implements PublicRoutes {
  readonly #links: LinkPages | null;

  constructor(links: LinkPages | null) {
    this.#links = links;
  }

  /**
   * `/connect/…` and `/connect`, in any case and any encoding (`/%63onnect/x`): a path that
   * is not literally one of Keygate's pages is 404, but a backend would decode it, or ignore
   * its case, and take it for its own, so it is not forwarded either. Read for every request
   * with a key: the first character decides for nearly all of them, without a copy.
   */
  owns(url: string): boolean {
    const first = url.charCodeAt(1);
    if ((first | 0x20) !== 0x63 && first !== 0x25) return false;
    if (url.startsWith(CONNECT_PREFIX)) return true;
    let path = pathOf(url);
    if (path.includes('%')) {
      try {
        path = decodeURIComponent(path);
      } catch {
        return false;
      }
    }
    path = foldCase(path);
    return path === '/connect' || path.startsWith(CONNECT_PREFIX);
  }

  route(method: string, url: string): string {
    const path = pathOf(url);
    if (path === '/connect/sdk.js' || path === '/connect/handback.js') return `${method} ${path}`;
    const m = LINK.exec(path);
    if (m !== null) return `${method} /connect/links/{token}${m[2] ?? ''}`;
    return `${method} /connect/*`;
  }

  async answer(req: IncomingMessage, res: ServerResponse, route: string, requestId: string): Promise<PublicAnswer> {
    const method = req.method ?? 'GET';
    const path = pathOf(req.url ?? '');
    const get = method === 'GET' || method === 'HEAD';
    if (get && path === '/connect/sdk.js') return { status: sendScript(res, SDK, req.headers['if-none-match'], requestId) };
    if (get && path === '/connect/handback.js') return { status: sendScript(res, HANDBACK, req.headers['if-none-match'], requestId) };
    const m = LINK.exec(path);
    if (m !== null && this.#links !== null) return this.#links.answer(req, res, m[1]!, m[2] !== undefined, requestId);
    void route;
    // The scripts take GET and HEAD only; anything else here is no page of Keygate's.
    const refusal = path === '/connect/sdk.js' || path === '/connect/handback.js' ? SCRIPT_METHOD : NO_PAGE;
    renderError(res, refusal, requestId);
    return { status: refusal.status, failure: refusal };
  }
}
