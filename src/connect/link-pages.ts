import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PublicAnswer } from './public-routes.ts';

/** The hosted pages of one link (GET/POST /connect/links/{token}, GET …/return). */
export interface LinkPages {
  answer(req: IncomingMessage, res: ServerResponse, token: string, isReturn: boolean, requestId: string): Promise<PublicAnswer>;
}
