// `keygate demo` as a newcomer uses it: run it, open the printed Connect link in a browser,
// go through the fake manufacturer sign-in, and land on the demo app with your devices.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT } from '../helpers/sidecar.ts';
import { type Browser, launchChromium } from './chromium.ts';

let proc: ReturnType<typeof spawn>;
let printed = '';
let browser: Browser;

beforeAll(async () => {
  proc = spawn(process.execPath, [BIN, 'demo', '--listen', '127.0.0.1:0', '--ops-listen', '127.0.0.1:0', '--access-log', 'false'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr!.on('data', (c: Buffer) => (printed += c.toString()));
  for (let i = 0; i < 300 && !printed.includes('Ctrl-C stops the demo'); i++) await new Promise((r) => setTimeout(r, 50));
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  proc?.kill('SIGTERM');
});

describe('keygate demo in a browser', () => {
  it('prints a demo app and a Connect link; the link leads through the device step to the app, which lists the new devices', async () => {
    const app = /demo app +(http:\/\/localhost:\d+\/)/.exec(printed)?.[1];
    const link = /a link +(http:\/\/localhost:\d+\/\?connect)\s/.exec(printed)?.[1];
    expect(app, printed).toBeDefined();
    expect(link, printed).toBeDefined();
    const page = await browser.context.newPage();
    // The app starts the redirect flow itself (its state kept in this tab) and goes to the hosted page.
    await page.goto(link!);
    await page.waitForURL(/\/connect\/links\//);
    await page.getByRole('button', { name: 'Connect a device' }).click();
    await page.getByLabel('ChargePoint').check();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByLabel('Username').fill('newcomer');
    await page.getByLabel('Password').fill('x');
    await page.getByRole('button', { name: /^Sign in/ }).click();
    await page.getByRole('button', { name: 'Share these devices' }).click();
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL((url) => url.href.startsWith(app!));
    await page.waitForSelector('#devices li');
    expect(await page.textContent('#devices')).toContain('Driveway charger');
    // And the app page itself uses the SDK from Keygate.
    await page.goto(app!);
    expect(await page.evaluate('typeof createConnectSession')).toBe('function');
  });
});
