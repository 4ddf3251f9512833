import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

/** Debian's Chromium, as `which chromium` finds it (.ci/run installs it when missing); never a browser of playwright's own. */
function chromiumPath(): string {
  const found = execFileSync('sh', ['-c', 'command -v chromium || true'], { encoding: 'utf8' }).trim();
  if (found === '') throw new Error('chromium is not installed (apt-get install -y chromium; .ci/run does it when missing)');
  return found;
}

export interface Browser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/**
 * A fresh Chromium profile, headless, with nothing of its own on the network. `localhost`
 * is pinned to 127.0.0.1 so an app page can sit on an origin of its own (another host
 * than Keygate's 127.0.0.1, so the browser treats it as cross-site) without IPv6 surprises.
 */
export async function launchChromium(options: { popupBlocking?: boolean } = {}): Promise<Browser> {
  const userDataDir = mkdtempSync(join(tmpdir(), 'keygate-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath(),
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--host-resolver-rules=MAP localhost 127.0.0.1',
    ],
    // Playwright turns the popup blocker off by default; the popup-blocked case needs it on.
    ...(options.popupBlocking === true ? { ignoreDefaultArgs: ['--disable-popup-blocking'] } : {}),
    viewport: { width: 480, height: 760 },
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
