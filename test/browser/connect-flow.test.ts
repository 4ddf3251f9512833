/**
 * The whole Connect flow in Chromium, on loopback: an app page on its own origin
 * (http://localhost:PORT) loads Keygate's SDK (http://127.0.0.1:PORT), the popup goes
 * through the hosted page and the demo backend's manufacturer step, the scoped key comes
 * back in onSuccess and lists only that user's devices across origins; the same through
 * the redirect; and a page on an origin no key allows is blocked.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DemoApp, type DemoAppConfig, startDemoApp } from '../../src/demo/app-page.ts';
import { type DemoBackend, startDemoBackend } from '../../src/demo/backend.ts';
import { demoConnectPolicy } from '../../src/demo/manufacturer-step.ts';
import { createKeyWith } from '../blackbox/connect-client.ts';
import { ROOT, type Sidecar, startSidecar, tempDir, tempStore } from '../helpers/sidecar.ts';
import { type Browser, launchChromium } from './chromium.ts';

let backend: DemoBackend;
let sidecar: Sidecar;
let app: DemoApp;
let stranger: DemoApp;
let browser: Browser;
const config: DemoAppConfig = { keygate: '', connectKey: '' };
const strangerConfig: DemoAppConfig = { keygate: '', connectKey: '' };
/** The README's picture of the hosted page: rewritten with UPDATE_SCREENSHOTS=1, else taken to a temporary file. */
const SCREENSHOT = process.env.UPDATE_SCREENSHOTS === '1' ? join(ROOT, 'docs/connect-page.png') : join(tempDir('keygate-shot-'), 'connect-page.png');

beforeAll(async () => {
  backend = await startDemoBackend();
  const policies = tempDir('keygate-browser-policies-');
  mkdirSync(policies, { recursive: true });
  copyFileSync(join(ROOT, 'policies/texture.yaml'), join(policies, 'texture.yaml'));
  writeFileSync(join(policies, 'connect.yaml'), demoConnectPolicy(backend.url));
  app = await startDemoApp(config);
  stranger = await startDemoApp(strangerConfig);
  const store = tempStore();
  const connect = await createKeyWith(store, 'connect', ['--allow-origin', app.origin, '--allow-redirect', app.url]);
  config.connectKey = connect.key;
  strangerConfig.connectKey = connect.key;
  sidecar = await startSidecar({ upstream: backend.url, store, policies });
  config.keygate = sidecar.url;
  strangerConfig.keygate = sidecar.url;
  browser = await launchChromium();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await sidecar?.stop();
  await app?.close();
  await stranger?.close();
  await backend?.close();
});

/** The demo backend's manufacturer step, as a user does it: maker, sign-in, devices. */
async function manufacturerStep(page: Page, maker: string): Promise<void> {
  await page.getByRole('button', { name: 'Connect a device' }).click();
  await page.getByLabel(maker).check();
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByLabel('Username').fill('someone@example.com');
  await page.getByLabel('Password').fill('anything');
  await page.getByRole('button', { name: /^Sign in/ }).click();
  await page.getByRole('button', { name: 'Share these devices' }).click();
}

async function deviceList(page: Page): Promise<Array<{ text: string; referenceId: string }>> {
  await page.waitForSelector('#devices li', { timeout: 15_000 });
  // Strings, not functions: they run in the page, and this project's TypeScript has no DOM types.
  return page.evaluate("[...document.querySelectorAll('#devices li')].map((li) => ({ text: li.textContent, referenceId: li.dataset.referenceId }))");
}

describe('Connect in Chromium', () => {
  it("popup: SDK → hosted page → manufacturer step → consent → onSuccess, then only this user's devices across origins", async () => {
    const page = await browser.context.newPage();
    await page.goto(app.url);
    const [popup] = await Promise.all([page.waitForEvent('popup'), page.click('#connect')]);
    await popup.waitForURL(/\/connect\/links\//);
    await expect.poll(() => popup.textContent('h1')).toContain('Demo energy app wants to use your devices');
    await manufacturerStep(popup, 'ecobee');
    await popup.waitForURL(/\/connect\/links\/[^/]+\?display=popup$/);
    await expect.poll(() => popup.textContent('main')).toContain('Living room thermostat');
    expect((await popup.screenshot({ path: SCREENSHOT })).subarray(1, 4).toString()).toBe('PNG');
    backend.received.length = 0;
    await Promise.all([popup.waitForEvent('close'), popup.getByRole('button', { name: 'Allow' }).click()]);
    const devices = await deviceList(page);
    expect(devices.map((d) => d.text)).toEqual([expect.stringContaining('Living room thermostat'), expect.stringContaining('Upstairs thermostat')]);
    const owner = devices[0]!.referenceId;
    expect(owner).toMatch(/^texture-generated:/);
    expect(devices.every((d) => d.referenceId === owner)).toBe(true);
    // What the backend received for the app's own request: the scoped filter, from the app's origin, without the key.
    const listed = backend.received.filter((r) => r.path === '/v1/devices' && r.headers['x-keygate-key-type'] === 'scoped');
    expect(listed).toHaveLength(1);
    expect(listed[0]!.query.get('referenceId')).toBe(owner);
    expect(listed[0]!.headers.origin).toBe(app.origin);
    expect(listed[0]!.headers['texture-api-key']).toBeUndefined();
    await page.close();
  });

  it('redirect: the same flow in one tab, the key comes back in texture_scoped_key', async () => {
    const page = await browser.context.newPage();
    await page.goto(app.url);
    await page.click('#redirect-flow');
    await page.waitForURL(/\/connect\/links\//);
    await manufacturerStep(page, 'Tesla');
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(new RegExp(`^${app.origin}/`));
    const devices = await deviceList(page);
    expect(devices.map((d) => d.text)).toEqual([expect.stringContaining('Garage Powerwall')]);
    expect(page.url()).not.toContain('texture_scoped_key');
    await page.close();
  });

  it('the app takes no key it did not ask for: a link to /?texture_scoped_key=… with another state is ignored', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${app.url}?texture_scoped_key=scoped_planted&state=demo-forged`);
    await page.waitForFunction("document.body.dataset.error === 'state_mismatch'");
    expect(await page.evaluate<string>("document.body.dataset.scopedKey || ''")).toBe('');
    expect(page.url()).not.toContain('texture_scoped_key');
    await page.close();
  });

  it('a page on an origin no key allows can neither create links nor read with a scoped key', async () => {
    const page = await browser.context.newPage();
    await page.goto(app.url);
    await page.click('#redirect-flow');
    await page.waitForURL(/\/connect\/links\//);
    await manufacturerStep(page, 'Enphase');
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(new RegExp(`^${app.origin}/`));
    await deviceList(page);
    const key = await page.evaluate<string>("document.body.dataset.scopedKey || ''");
    expect(key).toMatch(/^scoped_/);
    const evil = await browser.context.newPage();
    await evil.goto(stranger.url);
    backend.received.length = 0;
    const outcome = await evil.evaluate(`(async () => {
      const attempt = (f) => f().then((r) => 'status ' + r.status, (e) => 'blocked: ' + e.name);
      return {
        read: await attempt(() => fetch(${JSON.stringify(sidecar.url)} + '/v1/devices', { headers: { 'Texture-Api-Key': ${JSON.stringify(key)} } })),
        link: await attempt(() => fetch(${JSON.stringify(sidecar.url)} + '/v1/connections', { method: 'POST', headers: { 'Texture-Api-Key': ${JSON.stringify(config.connectKey)}, 'Content-Type': 'application/json' }, body: '{"redirectUrl":"http://localhost/"}' })),
      };
    })()`);
    expect(outcome).toEqual({ read: 'blocked: TypeError', link: 'blocked: TypeError' });
    expect(backend.received.filter((r) => !r.path.startsWith('/connect/'))).toEqual([]);
    await page.close();
    await evil.close();
  });

  it('a page on another origin that opens a link in a popup never receives the key (it is posted to the registered origin only)', async () => {
    // A link for the app (say its URL leaked), opened by a page elsewhere.
    const created = await fetch(`${sidecar.url}/v1/connections`, {
      method: 'POST',
      headers: { 'texture-api-key': config.connectKey, 'content-type': 'application/json' },
      body: JSON.stringify({ redirectUrl: app.url }),
    });
    expect(created.status).toBe(201);
    const link = (await created.json()) as { linkUrl: string };
    const evil = await browser.context.newPage();
    await evil.goto(stranger.url);
    await evil.evaluate("window.received = []; window.addEventListener('message', (e) => window.received.push(String(e.origin) + ' ' + JSON.stringify(e.data)))");
    const [popup] = await Promise.all([evil.waitForEvent('popup'), evil.evaluate(`void window.open(${JSON.stringify(link.linkUrl + '?display=popup')}, 'x', 'popup')`)]);
    await popup.waitForURL(/\/connect\/links\//);
    await manufacturerStep(popup, 'Enphase');
    await Promise.all([popup.waitForEvent('close'), popup.getByRole('button', { name: 'Allow' }).click()]);
    await new Promise((r) => setTimeout(r, 300));
    expect(await evil.evaluate('window.received')).toEqual([]);
    await evil.close();
  });

  it('the user closing the popup is reported as onError({type: "popup_closed"})', async () => {
    const page = await browser.context.newPage();
    await page.goto(app.url);
    const [popup] = await Promise.all([page.waitForEvent('popup'), page.click('#connect')]);
    await popup.waitForURL(/\/connect\/links\//);
    await popup.close();
    await expect.poll(() => page.evaluate('document.body.dataset.error')).toBe('popup_closed');
    await page.close();
  });
});

describe('Connect in Chromium behind an ingress that serves Keygate under /gate and strips it', () => {
  it('the SDK, the hosted pages, the device step and the hand-back all stay under the prefix', async () => {
    let target = 0;
    // The ingress: /gate/… → Keygate's /…, everything else 404.
    const ingress = createServer((req, res) => {
      if (!(req.url ?? '').startsWith('/gate/')) {
        res.writeHead(404).end();
        return;
      }
      const up = request({ host: '127.0.0.1', port: target, method: req.method, path: req.url!.slice('/gate'.length), headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => ingress.listen(0, '127.0.0.1', () => r()));
    const gate = `http://127.0.0.1:${(ingress.address() as AddressInfo).port}/gate`;
    const gatedConfig: DemoAppConfig = { keygate: gate, connectKey: '' };
    const gatedApp = await startDemoApp(gatedConfig);
    const store = tempStore();
    gatedConfig.connectKey = (await createKeyWith(store, 'connect', ['--allow-origin', gatedApp.origin, '--allow-redirect', gatedApp.url])).key;
    const policies = tempDir('keygate-browser-gate-');
    copyFileSync(join(ROOT, 'policies/texture.yaml'), join(policies, 'texture.yaml'));
    writeFileSync(join(policies, 'connect.yaml'), demoConnectPolicy(backend.url));
    const gated = await startSidecar({ upstream: backend.url, store, policies, env: { KEYGATE_PUBLIC_URL: gate } });
    target = Number(new URL(gated.url).port);
    try {
      const page = await browser.context.newPage();
      await page.goto(gatedApp.url);
      const [popup] = await Promise.all([page.waitForEvent('popup'), page.click('#connect')]);
      await popup.waitForURL(/\/gate\/connect\/links\//);
      await manufacturerStep(popup, 'ecobee');
      await popup.waitForURL(/\/gate\/connect\/links\/[^/]+\?display=popup$/);
      await Promise.all([popup.waitForEvent('close'), popup.getByRole('button', { name: 'Allow' }).click()]);
      const devices = await deviceList(page);
      expect(devices.map((d) => d.text)).toEqual([expect.stringContaining('Living room thermostat'), expect.stringContaining('Upstairs thermostat')]);
      await page.close();
    } finally {
      await gated.stop();
      await gatedApp.close();
      ingress.closeAllConnections();
      await new Promise<void>((r) => ingress.close(() => r()));
    }
  }, 60_000);
});

describe('Connect in Chromium with the popup blocker on', () => {
  it('a blocked popup is reported as onError({type: "popup_blocked"})', async () => {
    const blocking = await launchChromium({ popupBlocking: true });
    try {
      const page = await blocking.context.newPage();
      // Not from a click (nor from page.evaluate, which runs as a user gesture): on load, so the browser blocks window.open.
      await page.addInitScript("window.addEventListener('load', () => session.open())");
      await page.goto(app.url);
      await expect.poll(() => page.evaluate('document.body.dataset.error')).toBe('popup_blocked');
    } finally {
      await blocking.close();
    }
  });
});
