/**
 * The Connect flow with a device step (a backend page that links devices to the link's
 * referenceId): the step is entered and left with a one-time state, in the browser that
 * holds the link, and Keygate asks the backend server to server for the devices before
 * it mints anything.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createKeyWith, csrfOf, FormBrowser, type Link, newLink, pagePath, scopedKeyOf } from './connect-client.ts';
import { type Backend, type KeyInfo, keyHeader, POLICIES, type Sidecar, send, startBackend, startSidecar, tempStore } from './harness.ts';

const APP = 'https://app.example.com';
let backend: Backend;
let sidecar: Sidecar;
let connectKey: KeyInfo;
let port: number;
/** Devices the "manufacturer step" linked, by referenceId. */
const linked = new Map<string, Array<{ id: string; referenceId: string; name: string }>>();

beforeAll(async () => {
  backend = await startBackend();
  const policies = mkdtempSync(join(tmpdir(), 'keygate-bb-policies-'));
  copyFileSync(join(POLICIES, 'texture.yaml'), join(policies, 'texture.yaml'));
  writeFileSync(join(policies, 'connect.yaml'), `version: 1\nconnect:\n  deviceStep: '${backend.url}/step?referenceId={referenceId}&returnTo={returnUrl}&state={state}'\n`);
  const store = tempStore();
  connectKey = await createKeyWith(store, 'connect', ['--allow-origin', APP, '--allow-redirect', `${APP}/connected`]);
  sidecar = await startSidecar({ upstream: backend.url, store, policies });
  port = sidecar.proxyPort;
}, 60_000);
afterAll(async () => {
  await sidecar?.stop();
  await backend?.close();
});
beforeEach(() => {
  backend.reset();
  // The backend's device list answers for what the step linked.
  backend.responder = (rec) => {
    const url = new URL(rec.url, 'http://backend');
    if (url.pathname !== '/v1/devices') return undefined;
    const data = linked.get(url.searchParams.get('referenceId') ?? '') ?? [];
    return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data, page: 1, perPage: 100, totalItems: data.length, totalPages: 1 }) };
  };
});

/** Opens the link and presses "Connect a device": the 303 to the backend's step. */
async function toStep(link: Link, browser: FormBrowser): Promise<URL> {
  const page = await browser.get(port, pagePath(link));
  expect(page.text).toContain('value="link"');
  expect(page.text).not.toContain('value="allow"');
  const r = await browser.post(port, pagePath(link), { csrf: csrfOf(page.text), action: 'link' });
  expect(r.status).toBe(303);
  return new URL(r.headers.location!);
}

/** What the backend's step sends the browser back to. */
function returnPath(step: URL, state = step.searchParams.get('state')!): string {
  const back = new URL(step.searchParams.get('returnTo')!);
  back.searchParams.set('state', state);
  return back.pathname + back.search;
}

describe('the device step', () => {
  it("goes to the policy's backend page with the referenceId, the return address and a state; back, then allow mints the key after the backend confirms devices", async () => {
    const link = await newLink(port, connectKey.key, { redirectUrl: `${APP}/connected` });
    const browser = new FormBrowser();
    const step = await toStep(link, browser);
    expect(step.origin + step.pathname).toBe(`${backend.url}/step`);
    expect(step.searchParams.get('referenceId')).toBe(link.referenceId);
    expect(step.searchParams.get('returnTo')).toBe(`http://127.0.0.1:${port}/connect/links/${link.linkToken}/return`);
    expect(step.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    linked.set(link.referenceId, [{ id: 'dev-new-1', referenceId: link.referenceId, name: 'New thermostat' }]);
    const back = await browser.get(port, returnPath(step));
    expect(back.status).toBe(303);
    expect(back.headers.location).toBe(`/connect/links/${link.linkToken}`);
    const consent = await browser.get(port, pagePath(link));
    expect(consent.text).toContain('New thermostat');
    backend.received.length = 0;
    const done = await browser.post(port, pagePath(link), { csrf: csrfOf(consent.text), action: 'allow' });
    const key = scopedKeyOf(done);
    // Confirmed server to server at the moment of minting.
    expect(backend.received.map((r) => r.url)).toEqual([`/v1/devices?referenceId=${encodeURIComponent(link.referenceId)}&perPage=100`]);
    backend.received.length = 0;
    await send(port, { path: '/v1/devices', headers: keyHeader(key) });
    expect(backend.received[0]!.url).toBe(`/v1/devices?referenceId=${encodeURIComponent(link.referenceId)}`);
  });

  it('refuses to allow before the step, a forged or replayed state, and a return in another browser', async () => {
    const link = await newLink(port, connectKey.key, { redirectUrl: `${APP}/connected` });
    const browser = new FormBrowser();
    const page = await browser.get(port, pagePath(link));
    expect((await browser.post(port, pagePath(link), { csrf: csrfOf(page.text), action: 'allow' })).status).toBe(403);
    const step = await toStep(link, browser);
    // The step's form post bound the link to this browser: another one can no longer open it.
    expect((await new FormBrowser().get(port, pagePath(link))).status).toBe(403);
    expect((await browser.get(port, returnPath(step, 'forged'))).status).toBe(403);
    linked.set(link.referenceId, [{ id: 'dev-x', referenceId: link.referenceId, name: 'X' }]);
    expect((await browser.get(port, returnPath(step))).status).toBe(303);
    expect((await browser.get(port, returnPath(step))).status).toBe(403);
  });

  it("the step's state brought back to another browser ends the step: that address is then refused in the link's own browser too, and a new step works", async () => {
    const link = await newLink(port, connectKey.key, { redirectUrl: `${APP}/connected` });
    const browser = new FormBrowser();
    const step = await toStep(link, browser);
    linked.set(link.referenceId, [{ id: 'dev-y', referenceId: link.referenceId, name: 'Y' }]);
    expect((await new FormBrowser().get(port, returnPath(step))).status).toBe(403);
    expect((await browser.get(port, returnPath(step))).status).toBe(403);
    const again = await toStep(link, browser);
    expect((await browser.get(port, returnPath(again))).status).toBe(303);
  });

  it('a step that linked no device mints nothing and offers the step again', async () => {
    const link = await newLink(port, connectKey.key, { redirectUrl: `${APP}/connected` });
    const browser = new FormBrowser();
    const step = await toStep(link, browser);
    await browser.get(port, returnPath(step));
    const consent = await browser.get(port, pagePath(link));
    expect(consent.text).toContain('No device was connected');
    expect(consent.text).toContain('value="link"');
    // A devices list of someone else's never counts as this user's.
    linked.set(link.referenceId, [{ id: 'dev-bob', referenceId: 'bob', name: 'Bob thermostat' }]);
    const r = await browser.post(port, pagePath(link), { csrf: csrfOf(consent.text), action: 'allow' });
    expect(r.status).toBe(200);
    expect(r.headers.location).toBeUndefined();
    expect(r.text).toContain('No device was connected');
    expect(r.text).toContain('value="link"');
    expect(r.text).not.toContain('Bob thermostat');
    expect((await browser.get(port, pagePath(link))).status).toBe(200);
  });
});

describe('a session cookie planted in the victim’s browser (cookie tossing from a sibling host or a plain-http hop)', () => {
  /** What someone who chose a cookie value could compute under a CSRF token keyed by the cookie alone. */
  const computedCsrf = (value: string, linkId: string): string => createHmac('sha256', value).update(`csrf:${linkId}`).digest('base64url');
  const cookieName = (link: Link): string => `keygate_link_${link.id}`;

  it('of a value Keygate did not issue is ignored: the browser gets a fresh one, and the chosen value binds and finishes nothing', async () => {
    const link = await newLink(port, connectKey.key, { redirectUrl: `${APP}/connected` });
    const chosen = randomBytes(32).toString('base64url');
    const victim = new FormBrowser();
    victim.cookies.set(cookieName(link), chosen);
    const page = await victim.get(port, pagePath(link));
    expect(page.status).toBe(200);
    const issued = victim.cookies.get(cookieName(link));
    expect(issued).not.toBe(chosen);
    expect(page.headers['set-cookie']?.[0]).toContain(`${cookieName(link)}=${issued};`);
    // The attacker's own client, with the chosen value and the token it would have computed: refused, nothing bound.
    const attacker = new FormBrowser();
    attacker.cookies.set(cookieName(link), chosen);
    expect((await attacker.post(port, pagePath(link), { csrf: computedCsrf(chosen, link.id), action: 'link' })).status).toBe(403);
    expect((await attacker.post(port, pagePath(link), { csrf: csrfOf(page.text), action: 'link' })).status).toBe(403);
    // So the victim's browser is the one the link binds to, and it finishes normally.
    const step = await toStep(link, victim);
    linked.set(link.referenceId, [{ id: 'dev-v1', referenceId: link.referenceId, name: 'Victim thermostat' }]);
    expect((await victim.get(port, returnPath(step))).status).toBe(303);
    const consent = await victim.get(port, pagePath(link));
    expect(scopedKeyOf(await victim.post(port, pagePath(link), { csrf: csrfOf(consent.text), action: 'allow' }))).toMatch(/^scoped_/);
  });

  it('of a value Keygate issued to the attacker is worthless once the victim is back from the device step: the value is replaced there', async () => {
    const link = await newLink(port, connectKey.key, { redirectUrl: `${APP}/connected` });
    // The attacker opens the link in its own client: a value Keygate issued, and the page's CSRF token for it.
    const attacker = new FormBrowser();
    const own = await attacker.get(port, pagePath(link));
    const planted = attacker.cookies.get(cookieName(link))!;
    const victim = new FormBrowser();
    victim.cookies.set(cookieName(link), planted);
    const step = await toStep(link, victim);
    linked.set(link.referenceId, [{ id: 'dev-v2', referenceId: link.referenceId, name: 'Victim heater' }]);
    const back = await victim.get(port, returnPath(step));
    expect(back.status).toBe(303);
    expect(back.headers['set-cookie']?.[0]).toMatch(new RegExp(`^${cookieName(link)}=[^;]+; Path=/connect/; Max-Age=\\d+; HttpOnly; SameSite=Lax$`));
    expect(victim.cookies.get(cookieName(link))).not.toBe(planted);
    // The old value shows nothing, and posts nothing: neither allow (the key) nor cancel.
    expect((await attacker.get(port, pagePath(link))).status).toBe(403);
    expect((await attacker.post(port, pagePath(link), { csrf: csrfOf(own.text), action: 'allow' })).status).toBe(403);
    expect((await attacker.post(port, pagePath(link), { csrf: csrfOf(own.text), action: 'deny' })).status).toBe(403);
    const consent = await victim.get(port, pagePath(link));
    expect(consent.text).toContain('Victim heater');
    expect(csrfOf(consent.text)).not.toBe(csrfOf(own.text));
    const done = await victim.post(port, pagePath(link), { csrf: csrfOf(consent.text), action: 'allow' });
    expect(new URL(done.headers.location!).origin + new URL(done.headers.location!).pathname).toBe(`${APP}/connected`);
    expect(scopedKeyOf(done)).toMatch(/^scoped_/);
  });
});
