import { randomBytes } from 'node:crypto';
import { type Html, html, raw } from './html.ts';
import { STYLE, STYLE_HASH } from './style.ts';

export interface RenderedPage {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface PageOptions {
  readonly title: string;
  readonly status?: number;
  readonly content: Html;
  /** A same-origin script the page runs (by a per-answer nonce): the popup's hand-back. */
  readonly script?: string;
  /**
   * Where this page's forms may lead, besides Keygate itself: CSP's form-action also
   * governs the redirect that follows a submission (the app's redirect URL, the
   * backend's device step), e.g. `https://app.example.com` or `myapp:`.
   */
  readonly formTargets?: readonly string[];
  /** Extra headers (a Set-Cookie). */
  readonly headers?: Record<string, string>;
}

/**
 * Every hosted page goes through here, so every one carries the same guards: nothing
 * cached (the page holds a CSRF token, the last one a key), no Referer leaking the
 * link's path to the next site, no framing (clickjacking a consent button), and a CSP
 * that runs no inline script and loads nothing from anywhere else.
 */
export function renderPage(options: PageOptions): RenderedPage {
  const nonce = options.script === undefined ? undefined : randomBytes(16).toString('base64');
  const csp = [
    "default-src 'none'",
    `style-src ${STYLE_HASH}`,
    nonce === undefined ? null : `script-src 'nonce-${nonce}'`,
    `form-action 'self'${(options.formTargets ?? []).map((t) => ' ' + t).join('')}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ]
    .filter((d) => d !== null)
    .join('; ');
  const body = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${options.title}</title>
<style>${raw(STYLE)}</style>
</head>
<body>
<main>
<p class="brand">Keygate Connect</p>
<div class="card">
${options.content}
</div>
</main>
${nonce === undefined ? null : html`<script nonce="${nonce}" src="${options.script!}"></script>`}
</body>
</html>
`.text;
  return {
    status: options.status ?? 200,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      pragma: 'no-cache',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
      'x-content-type-options': 'nosniff',
      'cross-origin-resource-policy': 'same-origin',
      'content-security-policy': csp,
      ...options.headers,
    },
    body,
  };
}
