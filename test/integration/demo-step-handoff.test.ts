/**
 * `keygate demo`'s device step (the demo backend's fake manufacturer sign-in, with its
 * confirmation) against the hand-off: someone with the app's public connect key starts a
 * link, sends the step URL to another person, and tries to finish the link in their own
 * browser with the devices that person shared. The demo backend links devices only on
 * Keygate's confirmation of a code that came back to the link's browser.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DemoBackend, startDemoBackend } from '../../src/demo/backend.ts';
import { demoConnectPolicy } from '../../src/demo/manufacturer-step.ts';
import { createKeyWith, csrfOf, FormBrowser, type Link, newLink, pagePath } from '../blackbox/connect-client.ts';
import { ROOT, type Sidecar, startSidecar, tempDir, tempStore } from '../helpers/sidecar.ts';

const APP = 'https://app.example.com';
let backend: DemoBackend;
let sidecar: Sidecar;
let port: number;
let connectKey: string;

beforeAll(async () => {
  backend = await startDemoBackend();
  const policies = tempDir('keygate-demo-step-');
  mkdirSync(policies, { recursive: true });
  copyFileSync(join(ROOT, 'policies/texture.yaml'), join(policies, 'texture.yaml'));
  writeFileSync(join(policies, 'connect.yaml'), demoConnectPolicy(backend.url));
  const store = tempStore();
  connectKey = (await createKeyWith(store, 'connect', ['--allow-origin', APP, '--allow-redirect', `${APP}/connected`])).key;
  sidecar = await startSidecar({ upstream: backend.url, store, policies });
  port = Number(new URL(sidecar.url).port);
}, 60_000);
afterAll(async () => {
  await sidecar?.stop();
  await backend?.close();
});

/** Presses "Connect a device" in `browser`: the demo backend's step URL. */
async function stepOf(link: Link, browser: FormBrowser): Promise<URL> {
  const page = await browser.get(port, pagePath(link));
  const r = await browser.post(port, pagePath(link), { csrf: csrfOf(page.text), action: 'link' });
  expect(r.status).toBe(303);
  return new URL(r.headers.location!);
}

/** Another person walks the demo backend's sign-in with the step URL: maker, sign-in, share. Where the backend sends them back. */
async function shareWith(step: URL): Promise<URL> {
  const person = new FormBrowser();
  const carried = { referenceId: step.searchParams.get('referenceId')!, returnTo: step.searchParams.get('returnTo')!, state: step.searchParams.get('state')! };
  expect((await person.get(backend.port, step.pathname + step.search)).status).toBe(200);
  expect((await person.post(backend.port, '/connect/manufacturer/sign-in', { ...carried, manufacturer: 'ecobee' })).status).toBe(200);
  expect((await person.post(backend.port, '/connect/manufacturer/sign-in', { ...carried, manufacturer: 'ecobee', username: 'victim', password: 'x' })).status).toBe(200);
  const done = await person.post(backend.port, '/connect/manufacturer/devices', { ...carried, manufacturer: 'ecobee', device: '0' });
  expect(done.status).toBe(303);
  return new URL(done.headers.location!);
}

const devicesOf = (referenceId: string) => backend.devices.filter((d) => d.referenceId === referenceId);

describe("the demo's device step, handed to someone else", () => {
  it('links nothing for whoever started the link: the other person is sent back with a code their own browser cannot use, and the starter has only the state', async () => {
    const link = await newLink(port, connectKey, { redirectUrl: `${APP}/connected` });
    const attacker = new FormBrowser();
    const step = await stepOf(link, attacker);
    const back = await shareWith(step);
    expect(back.searchParams.get('code')).toMatch(/^[A-Za-z0-9_-]{32}$/);
    // Shared, but not linked: the demo backend waits for Keygate's confirmation.
    expect(devicesOf(link.referenceId)).toEqual([]);
    // Back in the other person's browser, which the link is not bound to: refused, nothing confirmed.
    expect((await new FormBrowser().get(port, back.pathname + back.search)).status).toBe(403);
    // The starter with the state alone, or with a made-up code.
    const mine = new URL(step.searchParams.get('returnTo')!);
    mine.searchParams.set('state', step.searchParams.get('state')!);
    expect((await attacker.get(port, mine.pathname + mine.search)).status).toBe(403);
    mine.searchParams.set('code', 'A'.repeat(32));
    expect((await attacker.get(port, mine.pathname + mine.search)).status).toBe(403);
    expect(devicesOf(link.referenceId)).toEqual([]);
    const page = await attacker.get(port, pagePath(link));
    expect(page.text).not.toContain('value="allow"');
  });

  it('a code the sign-in sent to a swapped return address is refused when the starter brings it back: the demo backend binds it to that address', async () => {
    const link = await newLink(port, connectKey, { redirectUrl: `${APP}/connected` });
    const attacker = new FormBrowser();
    const step = await stepOf(link, attacker);
    const swapped = new URL(step);
    swapped.searchParams.set('returnTo', `http://evil.example/connect/links/${link.linkToken}/return`);
    // A backend that knows Keygate's origin (keygate demo tells it) refuses the swapped step at once.
    backend.behaviour.returnOrigin = new URL(sidecar.url).origin;
    expect((await new FormBrowser().get(backend.port, swapped.pathname + swapped.search)).status).toBe(400);
    // One that does not sends the code there, and refuses to confirm it for Keygate's address.
    backend.behaviour.returnOrigin = null;
    const stolen = await shareWith(swapped);
    expect(stolen.origin).toBe('http://evil.example');
    const mine = new URL(step.searchParams.get('returnTo')!);
    mine.searchParams.set('state', step.searchParams.get('state')!);
    mine.searchParams.set('code', stolen.searchParams.get('code')!);
    const r = await attacker.get(port, mine.pathname + mine.search);
    expect(r.status).toBe(403);
    expect(r.text).toContain('could not be confirmed');
    expect(devicesOf(link.referenceId)).toEqual([]);
  });

  it('the person who started the link, doing the step in their own browser, gets their devices linked and listed for consent', async () => {
    const link = await newLink(port, connectKey, { redirectUrl: `${APP}/connected` });
    const user = new FormBrowser();
    const back = await shareWith(await stepOf(link, user));
    expect((await user.get(port, back.pathname + back.search)).status).toBe(303);
    expect(devicesOf(link.referenceId).map((d) => d.name)).toEqual(['Living room thermostat']);
    expect((await user.get(port, pagePath(link))).text).toContain('value="allow"');
    // The code is spent: the same return again is refused (the state too is used).
    expect((await user.get(port, back.pathname + back.search)).status).toBe(403);
    expect(devicesOf(link.referenceId)).toHaveLength(1);
  });
});
