import type { Abilities } from '../abilities.ts';
import { type Html, html } from './html.ts';
import { type RenderedPage, renderPage } from './layout.ts';

/** A device as the consent page lists it (fields of a Texture device object). */
export interface DeviceLine {
  readonly id: string;
  readonly name: string | null;
  readonly manufacturer: string | null;
  readonly model: string | null;
}

export interface ConsentView {
  readonly clientName: string | null;
  readonly abilities: Abilities;
  /** Where the user goes back to: the redirect URL's host (or scheme, for an app link). */
  readonly returnTo: string;
  /** The devices the key will cover; null before the device step has run. */
  readonly devices: readonly DeviceLine[] | null;
  /** The policy names a device step and the user has not been through it yet. */
  readonly offerLinking: boolean;
  /** Where the form posts (this page's own path). */
  readonly action: string;
  readonly csrf: string;
  readonly popup: boolean;
  readonly formTargets: readonly string[];
  readonly headers?: Record<string, string>;
}

function asker(view: ConsentView): string {
  return view.clientName ?? 'An app';
}

function deviceList(devices: readonly DeviceLine[]): Html {
  return html`<ul class="devices">${devices.map((d) => html`<li><strong>${d.name ?? d.id}</strong><span class="what">${[d.manufacturer, d.model].filter((x) => x !== null).join(' ') || d.id}</span></li>`)}</ul>`;
}

function hidden(view: ConsentView): Html {
  return html`<input type="hidden" name="csrf" value="${view.csrf}">${view.popup ? html`<input type="hidden" name="display" value="popup">` : null}`;
}

/**
 * The hosted page: who is asking, what the key will let them do, over which devices, and
 * where the user returns to. Every step is a plain form POST, so it works without
 * JavaScript; the buttons are real buttons in reading order, so it works by keyboard.
 */
export function consentPage(view: ConsentView): RenderedPage {
  const who = asker(view);
  const can = html`<h2>It will be able to</h2><ul>${view.abilities.phrases.map((p) => html`<li>${p}</li>`)}</ul>${view.abilities.everything ? html`<p class="bad">This is full access. Only continue if you trust this app completely.</p>` : null}`;
  let devices: Html;
  let actions: Html;
  if (view.offerLinking) {
    devices = html`<p>First, sign in with your device's manufacturer and choose the devices to share.</p>`;
    actions = html`<button class="primary" type="submit" name="action" value="link">Connect a device</button><button type="submit" name="action" value="deny">Cancel</button>`;
  } else if (view.devices !== null && view.devices.length > 0) {
    devices = html`<h2>On ${view.devices.length === 1 ? 'this device' : `these ${view.devices.length} devices`}</h2>${deviceList(view.devices)}`;
    actions = html`<button class="primary" type="submit" name="action" value="allow">Allow</button><button type="submit" name="action" value="deny">Cancel</button>`;
  } else {
    devices = html`<h2>On your devices</h2><p>No devices are connected for you yet, so there is nothing to share.</p>`;
    actions = html`<button type="submit" name="action" value="deny">Close</button>`;
  }
  const content = html`<h1>${who} wants to use your devices</h1>
${can}
${devices}
<p class="muted">You will return to ${view.returnTo}.</p>
<form method="post" action="${view.action}">${hidden(view)}<div class="actions">${actions}</div></form>`;
  return renderPage({ title: `${who} wants to use your devices`, content, formTargets: view.formTargets, ...(view.headers === undefined ? {} : { headers: view.headers }) });
}

/** Why a link cannot be used; the page says it and mints nothing. */
export type GoneReason = 'used' | 'expired' | 'unknown';

const GONE_TEXT: Record<GoneReason, string> = {
  used: 'This link has already been used.',
  expired: 'This link has expired.',
  unknown: 'This link is not valid.',
};

/** 410: a used, expired or tampered link (one page for all three, with the reason that is safe to say). */
export function gonePage(reason: GoneReason): RenderedPage {
  const content = html`<h1>This link cannot be used</h1>
<p>${GONE_TEXT[reason]} Connect links work once and for a short time.</p>
<p>Go back to the app you came from and start again to get a new link.</p>`;
  return renderPage({ title: 'This link cannot be used', status: 410, content });
}

/** A request to the link's page that is none of its forms (another action, another method, a step the link has no use for). */
export function notAFormPage(): RenderedPage {
  const content = html`<h1>This is not one of this page's forms</h1>
<p>Open the link again from the app and use the buttons on its page.</p>`;
  return renderPage({ title: "This is not one of this page's forms", status: 403, content });
}

/** The link was opened first in another browser (its session is bound to that one). */
export function otherBrowserPage(): RenderedPage {
  const content = html`<h1>This link is open in another browser</h1>
<p>For your safety a Connect link works only in the browser that opened it first.</p>
<p>Go back to the app and start again to get a new link.</p>`;
  return renderPage({ title: 'This link is open in another browser', status: 403, content });
}

/** The device step ended without a device for this user. */
export function noDevicesPage(view: Pick<ConsentView, 'action' | 'csrf' | 'popup' | 'formTargets' | 'headers'>): RenderedPage {
  const content = html`<h1>No device was connected</h1>
<p>The manufacturer sign-in finished without any device for you.</p>
<form method="post" action="${view.action}">${hidden(view as ConsentView)}<div class="actions"><button class="primary" type="submit" name="action" value="link">Try again</button><button type="submit" name="action" value="deny">Cancel</button></div></form>`;
  return renderPage({ title: 'No device was connected', content, formTargets: view.formTargets, ...(view.headers === undefined ? {} : { headers: view.headers }) });
}

/** The backend did not confirm the device step's code (used, expired, or brought back to another address). */
export function stepNotConfirmedPage(view: Pick<ConsentView, 'action' | 'csrf' | 'popup' | 'formTargets'>): RenderedPage {
  const content = html`<h1>The device sign-in could not be confirmed</h1>
<p>Nothing was shared with the app. Sign in to your device maker again from this page.</p>
<form method="post" action="${view.action}">${hidden(view as ConsentView)}<div class="actions"><button class="primary" type="submit" name="action" value="link">Try again</button><button type="submit" name="action" value="deny">Cancel</button></div></form>`;
  return renderPage({ title: 'The device sign-in could not be confirmed', status: 403, content, formTargets: view.formTargets });
}

/** The store could not make the key just now; the link is still the user's, and Allow may be pressed again. */
export function notNowPage(view: Pick<ConsentView, 'action' | 'csrf' | 'popup' | 'formTargets'>): RenderedPage {
  const content = html`<h1>The connection could not be finished just now</h1>
<p>Nothing was given to the app. The link still works: try again in a moment.</p>
<form method="post" action="${view.action}">${hidden(view as ConsentView)}<div class="actions"><button class="primary" type="submit" name="action" value="allow">Try again</button><button type="submit" name="action" value="deny">Cancel</button></div></form>`;
  return renderPage({ title: 'The connection could not be finished just now', status: 503, content, formTargets: view.formTargets, headers: { 'retry-after': '5' } });
}

export interface HandBack {
  /** The exact origin the key may be posted to (the registered redirect's). */
  readonly targetOrigin: string;
  readonly scopedKey?: string;
  readonly error?: string;
  readonly state: string | null;
  /** Where a browser without the opener goes instead (the redirect, key in its query). */
  readonly fallbackUrl: string;
  /** The hand-back script's path as the browser sees it (under `--public-url`'s path). */
  readonly script: string;
}

/**
 * The popup's last page: a same-origin script posts the outcome to the window that opened
 * it, to `targetOrigin` only (the browser delivers nothing if the opener is anywhere
 * else), then closes the popup. The values ride in data attributes, not in script text.
 */
export function handBackPage(h: HandBack): RenderedPage {
  const content = html`<h1>${h.error === undefined ? 'All set' : 'Cancelled'}</h1>
<p id="keygate-handback" data-target-origin="${h.targetOrigin}"${h.scopedKey === undefined ? null : html` data-scoped-key="${h.scopedKey}"`}${h.error === undefined ? null : html` data-error="${h.error}"`}${h.state === null ? null : html` data-state="${h.state}"`}>You can close this window.</p>
<p class="muted"><a href="${h.fallbackUrl}">Return to the app</a> if it did not continue on its own.</p>`;
  return renderPage({ title: h.error === undefined ? 'All set' : 'Cancelled', content, script: h.script, formTargets: [] });
}
