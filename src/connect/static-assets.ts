import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';

export interface StaticAsset {
  readonly body: Buffer;
  readonly etag: string;
}

function asset(name: string): StaticAsset {
  const body = readFileSync(new URL(`./static/${name}`, import.meta.url));
  return { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

/** The scripts Keygate serves, read once at start. */
export const SDK = asset('sdk.js');
export const HANDBACK = asset('handback.js');

/**
 * A script any page may load (`<script src>` is not subject to CORS, and the SDK is public
 * by design); cached by browsers for a short while and revalidated by its ETag.
 */
export function sendScript(res: ServerResponse, script: StaticAsset, ifNoneMatch: string | undefined, requestId: string): number {
  const headers = {
    'content-type': 'text/javascript; charset=utf-8',
    'cache-control': 'public, max-age=300',
    etag: script.etag,
    'x-content-type-options': 'nosniff',
    'cross-origin-resource-policy': 'cross-origin',
    'x-request-id': requestId,
  };
  if (ifNoneMatch === script.etag) {
    res.writeHead(304, headers);
    res.end();
    return 304;
  }
  res.writeHead(200, { ...headers, 'content-length': script.body.length });
  res.end(script.body);
  return 200;
}
