import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Browser, launchChromium } from './chromium.ts';

describe('browser test infrastructure', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  });

  it('drives Debian Chromium through playwright-core against a page on loopback', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>ok</title><p id="x">hello</p>');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const page = await browser.context.newPage();
    await page.goto(`http://localhost:${port}/`);
    expect(await page.textContent('#x')).toBe('hello');
    expect(browser.context.browser()?.version() ?? (await page.evaluate(() => navigator.userAgent))).toMatch(/\d/);
    await page.close();
    server.close();
  });
});
