import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LinkPages } from './link-pages.ts';
import type { RenderedPage } from './pages/layout.ts';
import { notFoundPage } from './pages/views.ts';
import { CONNECT_PREFIX, type PublicAnswer, type PublicRoutes } from './public-routes.ts';
import { HANDBACK, SDK, sendScript } from './static-assets.ts';

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

  owns(url: string): boolean {
    return url.startsWith(CONNECT_PREFIX);
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
    const page = notFoundPage();
    sendPage(res, page, requestId);
    void route;
    return { status: page.status };
  }
}
