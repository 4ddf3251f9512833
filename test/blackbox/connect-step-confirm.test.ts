/**
 * The device step with a confirmation (`connect.deviceStepConfirm`): the backend's step
 * links nothing by itself; it sends the browser back with state and a one-time code, and
 * links the devices when Keygate posts the code. The attack this closes: someone starts a
 * link with a public connect key, takes the step URL to another person, and finishes the
 * link in their own browser with the devices that person linked. The backend here is the
 * test's own: its step issues codes bound to the return address, as an OAuth server would.
 */
import { randomBytes } from 'node:crypto';
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
type Device = { id: string; referenceId: string; name: string };
/** Devices linked (only on a confirmation), by referenceId. */
const linked = new Map<string, Device[]>();
/** Codes the "manufacturer" issued: what the user picked, for which referenceId and return address. */
const codes = new Map<string, { referenceId: string; state: string; returnTo: string; devices: Device[] }>();
/** What the confirmation endpoint answers instead of judging (a failing backend), when set. */
let confirmStatus: number | undefined;

beforeAll(async () => {
  backend = await startBackend();
  const policies = mkdtempSync(join(tmpdir(), 'keygate-bb-policies-'));
  copyFileSync(join(POLICIES, 'texture.yaml'), join(policies, 'texture.yaml'));
  writeFileSync(
    join(policies, 'connect.yaml'),
    `version: 1\nconnect:\n  deviceStep: '${backend.url}/step?referenceId={referenceId}&returnTo={returnUrl}&state={state}'\n  deviceStepConfirm: /step/confirm\n`,
  );
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
  confirmStatus = undefined;
  backend.responder = (rec) => {
    const url = new URL(rec.url, 'http://backend');
    if (url.pathname === '/v1/devices') {
      const data = linked.get(url.searchParams.get('referenceId') ?? '') ?? [];
      return { status: 200, body: JSON.stringify({ data, page: 1, perPage: 100, totalItems: data.length, totalPages: 1 }) };
    }
    if (url.pathname === '/step/confirm' && rec.method === 'POST') {
      if (confirmStatus !== undefined) return { status: confirmStatus, body: '{}' };
      const asked = JSON.parse(rec.body.toString('utf8')) as { referenceId: string; code: string; state: string; returnUrl: string };
      const issued = codes.get(asked.code);
      codes.delete(asked.code);
      if (issued === undefined || issued.referenceId !== asked.referenceId || issued.state !== asked.state || issued.returnTo !== asked.returnUrl) return { status: 400, body: '{"error":"bad code"}' };
      linked.set(issued.referenceId, [...(linked.get(issued.referenceId) ?? []), ...issued.devices]);
      return { status: 200, body: '{}' };
    }
    return undefined;
  };
});

/** Opens the link and presses "Connect a device": the backend's step URL. */
async function toStep(link: Link, browser: FormBrowser): Promise<URL> {
  const page = await browser.get(port, pagePath(link));
  const r = await browser.post(port, pagePath(link), { csrf: csrfOf(page.text), action: 'link' });
  expect(r.status).toBe(303);
  return new URL(r.headers.location!);
}

/**
 * Whoever holds the step URL signs in at the "manufacturer" and shares `devices`: a code is
 * issued for the return address the URL names (or the one an attacker put there), and the
 * browser is sent back with state and code. Returns that path-and-query on the sidecar.
 */
function signIn(step: URL, devices: Device[], returnTo = step.searchParams.get('returnTo')!): { back: string; code: string } {
  const code = randomBytes(16).toString('base64url');
  codes.set(code, { referenceId: step.searchParams.get('referenceId')!, state: step.searchParams.get('state')!, returnTo, devices });
  const back = new URL(returnTo);
  back.searchParams.set('state', step.searchParams.get('state')!);
  back.searchParams.set('code', code);
  return { back: back.pathname + back.search, code };
}

const confirmations = (): Array<{ referenceId: string; code: string; state: string; returnUrl: string }> =>
  backend.received.filter((r) => r.url === '/step/confirm').map((r) => JSON.parse(r.body.toString('utf8')) as { referenceId: string; code: string; state: string; returnUrl: string });

describe('the device step with a confirmation', () => {
  it('links the devices when the code comes back to the bound browser: Keygate posts the code, the referenceId and its own return address', async () => {
    const link = await newLink(port, connectKey.key, { redirectUrl: `${APP}/connected` });
    const browser = new FormBrowser();
    const step = await toStep(link, browser);
    const { back, code } = signIn(step, [{ id: 'dev-c1', referenceId: link.referenceId, name: 'Confirmed thermostat' }]);
    // Nothing is linked before the confirmation.
    expect(linked.get(link.referenceId)).toBeUndefined();
    const r = await browser.get(port, back);
    expect(r.status).toBe(303);
    expect(confirmations()).toEqual([{ referenceId: link.referenceId, code, state: step.searchParams.get('state'), returnUrl: `http://127.0.0.1:${port}/connect/links/${link.linkToken}/return` }]);
    const confirm = backend.received.find((x) => x.url === '/step/confirm')!;
    expect(confirm.headers['content-type']).toBe('application/json');
    expect(confirm.headers['x-keygate-purpose']).toBe('connect-step-confirm');
    const consent = await browser.get(port, pagePath(link));
    expect(consent.text).toContain('Confirmed thermostat');
    const key = scopedKeyOf(await browser.post(port, pagePath(link), { csrf: csrfOf(consent.text), action: 'allow' }));
    backend.received.length = 0;
    await send(port, { path: '/v1/devices', headers: keyHeader(key) });
    expect(backend.received[0]!.url).toBe(`/v1/devices?referenceId=${encodeURIComponent(link.referenceId)}`);
  });

  it('a step URL handed to someone else links nothing for whoever started it: their return is refused unconfirmed, and a return without their code is not confirmed', async () => {
    const link = await newLink(port, connectKey.key, { redirectUrl: `${APP}/connected` });
    const attacker = new FormBrowser();
    const step = await toStep(link, attacker);
    // The attacker "returns" first, before anyone signed in: no code, nothing to confirm.
    const early = new URL(step.searchParams.get('returnTo')!);
    early.searchParams.set('state', step.searchParams.get('state')!);
    expect((await attacker.get(port, early.pathname + early.search)).status).toBe(403);
    // The victim signs in with the handed-off URL and is sent back with the code, in her own browser:
    // refused, and the step ends there, so the address she landed on is worth nothing to anyone.
    const victim = new FormBrowser();
    const { back } = signIn(step, [{ id: 'dev-victim', referenceId: link.referenceId, name: 'Victim thermostat' }]);
    expect((await victim.get(port, back)).status).toBe(403);
    expect((await attacker.get(port, back)).status).toBe(403);
    // The attacker with the state and any code: the step is over, nothing is confirmed.
    early.searchParams.set('code', randomBytes(16).toString('base64url'));
    expect((await attacker.get(port, early.pathname + early.search)).status).toBe(403);
    expect(confirmations()).toEqual([]);
    // The victim's code was never presented by Keygate, her devices are linked to no one, and the link mints nothing.
    expect(confirmations().map((c) => c.code)).not.toContain(new URL(back, 'http://x').searchParams.get('code'));
    expect(linked.get(link.referenceId)).toBeUndefined();
    const page = await attacker.get(port, pagePath(link));
    expect(page.text).not.toContain('value="allow"');
    expect((await attacker.post(port, pagePath(link), { csrf: csrfOf(page.text), action: 'allow' })).status).toBe(403);
  });

  it('one guess per step: a code the backend refuses ends the step, and Try again starts another with a new state', async () => {
    const link = await newLink(port, connectKey.key, { redirectUrl: `${APP}/connected` });
    const attacker = new FormBrowser();
    const step = await toStep(link, attacker);
    const guess = new URL(step.searchParams.get('returnTo')!);
    guess.searchParams.set('state', step.searchParams.get('state')!);
    guess.searchParams.set('code', 'guess-1');
    const refused = await attacker.get(port, guess.pathname + guess.search);
    expect(refused.status).toBe(403);
    expect(refused.text).toContain('could not be confirmed');
    expect(refused.text).toContain('value="link"');
    guess.searchParams.set('code', 'guess-2');
    expect((await attacker.get(port, guess.pathname + guess.search)).status).toBe(403);
    expect(confirmations().map((c) => c.code)).toEqual(['guess-1']);
    // A code issued in the first step is not one of the next step's.
    const { code } = signIn(step, [{ id: 'dev-late', referenceId: link.referenceId, name: 'Late' }]);
    const again = await toStep(link, attacker);
    const next = new URL(again.searchParams.get('returnTo')!);
    next.searchParams.set('state', again.searchParams.get('state')!);
    next.searchParams.set('code', code);
    expect((await attacker.get(port, next.pathname + next.search)).status).toBe(403);
    expect(linked.get(link.referenceId)).toBeUndefined();
  });

  it('a code sent to another return address (an attacker swapped returnTo) is refused when the attacker brings it back himself', async () => {
    const link = await newLink(port, connectKey.key, { redirectUrl: `${APP}/connected` });
    const attacker = new FormBrowser();
    const step = await toStep(link, attacker);
    const swapped = `https://evil.example/connect/links/${link.linkToken}/return`;
    const { code } = signIn(step, [{ id: 'dev-victim2', referenceId: link.referenceId, name: 'Victim heater' }], swapped);
    const real = new URL(step.searchParams.get('returnTo')!);
    real.searchParams.set('state', step.searchParams.get('state')!);
    real.searchParams.set('code', code);
    expect((await attacker.get(port, real.pathname + real.search)).status).toBe(403);
    expect(confirmations()).toEqual([{ referenceId: link.referenceId, code, state: step.searchParams.get('state'), returnUrl: step.searchParams.get('returnTo') }]);
    expect(linked.get(link.referenceId)).toBeUndefined();
  });

  it('a backend that fails the confirmation is a 502, not a linked link; the same state and code may be brought back again', async () => {
    const link = await newLink(port, connectKey.key, { redirectUrl: `${APP}/connected` });
    const browser = new FormBrowser();
    const step = await toStep(link, browser);
    const { back } = signIn(step, [{ id: 'dev-c2', referenceId: link.referenceId, name: 'Late thermostat' }]);
    confirmStatus = 500;
    expect((await browser.get(port, back)).status).toBe(502);
    expect((await browser.get(port, pagePath(link))).text).not.toContain('value="allow"');
    confirmStatus = undefined;
    expect((await browser.get(port, back)).status).toBe(303);
    expect((await browser.get(port, pagePath(link))).text).toContain('Late thermostat');
  });
});
