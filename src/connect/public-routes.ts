import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KeygateError } from '../errors/keygate-error.ts';

/** How one of Keygate's own pages ended, for the access line and the metrics. */
export interface PublicAnswer {
  readonly status: number;
  /** Set when the page was a refusal (a used link): the page is already written, this names its code. */
  readonly failure?: KeygateError | undefined;
}

/**
 * Keygate's own unauthenticated pages (the hosted Connect pages, the SDK): answered
 * before authentication and never forwarded. `route` is the template the access line and
 * the metrics show instead of the path, which may hold a link token.
 */
export interface PublicRoutes {
  owns(url: string): boolean;
  route(method: string, url: string): string;
  answer(req: IncomingMessage, res: ServerResponse, route: string, requestId: string): Promise<PublicAnswer>;
}

export const CONNECT_PREFIX = '/connect/';
