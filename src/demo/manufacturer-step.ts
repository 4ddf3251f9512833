import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Device } from './data.ts';

/**
 * The demo backend's device step of the Connect flow: what a real backend does with a
 * manufacturer's OAuth sign-in, faked. Keygate sends the browser here with the link's
 * referenceId, its return address and a state; the user picks a manufacturer, "signs in"
 * (any name and password), picks devices, and those devices then belong to the
 * referenceId; the browser goes back to Keygate with the state. Plain HTML forms, no
 * script, nothing loaded from elsewhere.
 *
 * The devices are linked only when Keygate confirms (`connect.deviceStepConfirm:
 * /connect/manufacturer/confirm`): the browser goes back with a one-time code, and Keygate,
 * having checked that it came back to the browser the link is bound to, posts the code with
 * the referenceId and the return address it gave. A step URL handed to another person thus
 * links nothing for whoever started it (OAuth's authorization code: single use, short-lived,
 * and bound to the redirect it was sent to, RFC 6749 §4.1.2 and §4.1.3).
 */
const MANUFACTURERS = {
  ecobee: {
    label: 'ecobee',
    devices: [
      { model: 'SmartThermostat Premium', type: 'thermostat', name: 'Living room thermostat', state: { mode: 'heat', heatSetpoint: 20.5, ambientTemperature: 19.8 } },
      { model: 'SmartThermostat Enhanced', type: 'thermostat', name: 'Upstairs thermostat', state: { mode: 'off', ambientTemperature: 18.9 } },
    ],
  },
  tesla: { label: 'Tesla', devices: [{ model: 'Powerwall 3', type: 'battery', name: 'Garage Powerwall', state: { chargePercentage: 82, gridStatus: 'connected', mode: 'self_consumption' } }] },
  enphase: { label: 'Enphase', devices: [{ model: 'IQ8', type: 'solar_inverter', name: 'Roof solar', state: { power: 3120, energyToday: 14.2 } }] },
  chargepoint: { label: 'ChargePoint', devices: [{ model: 'Home Flex', type: 'charger', name: 'Driveway charger', state: { isCharging: false, chargeRate: 0 } }] },
} as const;

type Maker = keyof typeof MANUFACTURERS;

function isMaker(v: string | null): v is Maker {
  return v !== null && Object.hasOwn(MANUFACTURERS, v);
}

const STYLE =
  'body{font:16px/1.5 system-ui,sans-serif;max-width:30rem;margin:0 auto;padding:1.5rem 1rem}fieldset{border:1px solid #ccc;border-radius:8px;margin:1rem 0}label{display:block;margin:.5rem 0}input[type=text],input[type=password]{display:block;width:100%;font:inherit;padding:.5rem}button{font:inherit;font-weight:600;min-height:44px;padding:.5rem 1.2rem;margin-top:1rem}button:focus-visible,input:focus-visible{outline:3px solid #0b5cad}';

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(res: ServerResponse, status: number, title: string, body: string): void {
  const text = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)}</title><style>${STYLE}</style></head><body><p><small>Demo device backend</small></p><h1>${esc(title)}</h1>${body}</body></html>`;
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http: https:; frame-ancestors 'none'",
  });
  res.end(text);
}

interface Session {
  referenceId: string;
  returnTo: string;
  state: string;
}

/** The Keygate return address: an http(s) URL to a link's return path on Keygate's origin (when known), so the demo is no open redirect. */
function sessionOf(params: URLSearchParams, returnOrigin: string | null): Session | string {
  const referenceId = params.get('referenceId');
  const returnTo = params.get('returnTo');
  const state = params.get('state');
  if (referenceId === null || referenceId === '' || returnTo === null || state === null || state === '') return 'referenceId, returnTo and state are required';
  let url: URL;
  try {
    url = new URL(returnTo);
  } catch {
    return 'returnTo is not a URL';
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !/^(\/[^/]+)*\/connect\/links\/[^/]+\/return$/.test(url.pathname)) return 'returnTo is not a Keygate return address';
  if (returnOrigin !== null && url.origin !== returnOrigin) return 'returnTo is not on Keygate';
  return { referenceId, returnTo, state };
}

function carried(s: Session): string {
  return `<input type="hidden" name="referenceId" value="${esc(s.referenceId)}"><input type="hidden" name="returnTo" value="${esc(s.returnTo)}"><input type="hidden" name="state" value="${esc(s.state)}">`;
}

/** The policy file that turns this step on, confirmation included (keygate demo writes it; the browser tests too). */
export function demoConnectPolicy(backendUrl: string): string {
  return [
    'version: 1',
    'connect:',
    `  deviceStep: '${backendUrl}/connect/manufacturer?referenceId={referenceId}&returnTo={returnUrl}&state={state}'`,
    '  deviceStepConfirm: /connect/manufacturer/confirm',
    '',
  ].join('\n');
}

let linked = 0;

/** A finished sign-in waiting for Keygate's confirmation. */
interface Pending {
  readonly referenceId: string;
  readonly state: string;
  readonly returnTo: string;
  readonly picks: readonly Device[];
  readonly into: Device[];
  readonly expiresAt: number;
}

const CODE_TTL_MS = 10 * 60_000;
const pending = new Map<string, Pending>();

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** POST /connect/manufacturer/confirm {referenceId, code, state, returnUrl}: links the devices of that sign-in, once. */
function confirm(body: string, res: ServerResponse): void {
  let asked: { referenceId?: unknown; code?: unknown; state?: unknown; returnUrl?: unknown };
  try {
    asked = JSON.parse(body) as typeof asked;
  } catch {
    return json(res, 400, { error: { status: 400, message: 'the body is not JSON' } });
  }
  const p = typeof asked?.code === 'string' ? pending.get(asked.code) : undefined;
  if (p === undefined || p.expiresAt < Date.now()) return json(res, 404, { error: { status: 404, message: 'no such code (unknown, used or expired)' } });
  // A wrong referenceId, step or return address spends the code: it was sent somewhere it should not be.
  pending.delete(asked.code as string);
  if (asked.referenceId !== p.referenceId || asked.state !== p.state || asked.returnUrl !== p.returnTo)
    return json(res, 400, { error: { status: 400, message: 'the code was issued for another referenceId, step or return address' } });
  for (const d of p.picks) p.into.push(d);
  json(res, 200, { referenceId: p.referenceId, linked: p.picks.map((d) => d.id) });
}

/** Handles GET /connect/manufacturer, its two form POSTs and Keygate's confirmation; false when the path is not the step's. */
export function manufacturerStep(method: string, path: string, query: URLSearchParams, body: string, devices: Device[], res: ServerResponse, returnOrigin: string | null = null): boolean {
  if (!path.startsWith('/connect/manufacturer')) return false;
  if (path === '/connect/manufacturer/confirm') {
    if (method === 'POST') confirm(body, res);
    else json(res, 405, { error: { status: 405, message: 'POST only' } });
    return true;
  }
  const params = method === 'POST' ? new URLSearchParams(body) : query;
  const session = sessionOf(params, returnOrigin);
  if (typeof session === 'string') {
    page(res, 400, 'This sign-in cannot continue', `<p>${esc(session)}.</p>`);
    return true;
  }
  if (method === 'GET' && path === '/connect/manufacturer') {
    const choices = Object.entries(MANUFACTURERS)
      .map(([id, m], i) => `<label><input type="radio" name="manufacturer" value="${id}"${i === 0 ? ' checked' : ''}> ${esc(m.label)}</label>`)
      .join('');
    page(
      res,
      200,
      'Choose your device maker',
      `<form method="post" action="/connect/manufacturer/sign-in">${carried(session)}<fieldset><legend>Manufacturer</legend>${choices}</fieldset><button type="submit">Continue</button></form>`,
    );
    return true;
  }
  const maker = params.get('manufacturer');
  if (method === 'POST' && path === '/connect/manufacturer/sign-in' && isMaker(maker)) {
    const m = MANUFACTURERS[maker];
    const form = params.has('username')
      ? `<form method="post" action="/connect/manufacturer/devices">${carried(session)}<input type="hidden" name="manufacturer" value="${maker}"><fieldset><legend>Devices in your ${esc(m.label)} account</legend>${m.devices.map((d, i) => `<label><input type="checkbox" name="device" value="${i}" checked> ${esc(d.name)} <small>(${esc(d.model)})</small></label>`).join('')}</fieldset><button type="submit">Share these devices</button></form>`
      : `<form method="post" action="/connect/manufacturer/sign-in">${carried(session)}<input type="hidden" name="manufacturer" value="${maker}"><p>Demo: any name and password sign in.</p><label>Username<input type="text" name="username" autocomplete="username" required></label><label>Password<input type="password" name="password" autocomplete="current-password" required></label><button type="submit">Sign in to ${esc(m.label)}</button></form>`;
    page(res, 200, params.has('username') ? 'Choose devices to share' : `Sign in to ${m.label}`, form);
    return true;
  }
  if (method === 'POST' && path === '/connect/manufacturer/devices' && isMaker(maker)) {
    const m = MANUFACTURERS[maker];
    const now = new Date().toISOString();
    const picks: Device[] = [];
    for (const pick of params.getAll('device')) {
      const d = m.devices[Number(pick)];
      if (d === undefined) continue;
      linked++;
      picks.push({
        id: `dev_${maker}_${linked}`,
        referenceId: session.referenceId,
        manufacturer: maker,
        model: d.model,
        type: d.type,
        name: d.name,
        state: { ...d.state },
        tags: [],
        siteId: null,
        createdAt: now,
        updatedAt: now,
      });
    }
    const code = randomBytes(24).toString('base64url');
    for (const [c, p] of pending) if (p.expiresAt < Date.now()) pending.delete(c);
    pending.set(code, { referenceId: session.referenceId, state: session.state, returnTo: session.returnTo, picks, into: devices, expiresAt: Date.now() + CODE_TTL_MS });
    const back = new URL(session.returnTo);
    back.searchParams.set('state', session.state);
    back.searchParams.set('code', code);
    res.writeHead(303, { location: back.href, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer', 'content-length': 0 });
    res.end();
    return true;
  }
  page(res, 404, 'Not found', '<p>There is no page here.</p>');
  return true;
}
