/**
 * The Connect flow through its external contract: links created over HTTP by connect and
 * server keys, the hosted pages walked as a browser would (cookies, forms), the scoped key
 * used afterwards; every refusal, single use, expiry, and no secret in any log line.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createKeyWith, createLink, csrfOf, FormBrowser, finishLink, type Link, newLink, pagePath, scopedKeyOf } from './connect-client.ts';
import { type Backend, errorBody, type KeyInfo, keyHeader, type Res, type Sidecar, send, startBackend, startSidecar, tempStore } from './harness.ts';
import { policyWithLimits } from './rate-limit-policy.ts';

const APP = 'https://app.example.com';
const REDIRECT = `${APP}/connected`;

let backend: Backend;
let sidecar: Sidecar;
let store: string;
let server: KeyInfo;
let connectKey: KeyInfo;
let trustedConnect: KeyInfo;
let alice: KeyInfo;
let port: number;
const PUBLIC_URL = 'https://keygate.example.test';

beforeAll(async () => {
  backend = await startBackend();
  store = tempStore();
  server = await createKeyWith(store, 'server');
  connectKey = await createKeyWith(store, 'connect', ['--allow-origin', APP, '--allow-redirect', REDIRECT, '--allow-redirect', 'myapp://connected']);
  trustedConnect = await createKeyWith(store, 'connect', ['--allow-origin', APP, '--allow-redirect', REDIRECT, '--allow-reference-id']);
  alice = await createKeyWith(store, 'scoped', ['--reference-id', 'alice']);
  // This suite makes more links from one address than the shipped policy's rate limit lets
  // through in a minute (that limit is tested in rate-limits.test.ts), so its policy has none.
  sidecar = await startSidecar({ upstream: backend.url, store, policies: policyWithLimits(null), env: { KEYGATE_PUBLIC_URL: PUBLIC_URL } });
  port = sidecar.proxyPort;
}, 60_000);
afterAll(async () => {
  await sidecar?.stop();
  await backend?.close();
});
beforeEach(() => backend.reset());

describe('POST /v1/connections', () => {
  it("is answered by Keygate (201, Texture's shape, linkUrl under --public-url), never forwarded", async () => {
    const r = await createLink(port, connectKey.key, { redirectUrl: REDIRECT, clientName: 'Acme', state: 'st-1' });
    expect(r.status).toBe(201);
    const link = r.json as Link;
    expect(Object.keys(link).sort()).toEqual(['expiresAt', 'id', 'linkToken', 'linkUrl', 'referenceId']);
    expect(link.linkUrl).toBe(`${PUBLIC_URL}/connect/links/${link.linkToken}`);
    expect(link.referenceId).toMatch(/^texture-generated:[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(Date.parse(link.expiresAt) - Date.now()).toBeGreaterThan(29 * 60_000);
    expect(backend.received).toEqual([]);
  });

  it.each([
    [{}, 'redirectUrl is required'],
    [{ redirectUrl: REDIRECT, email: 'a@example.com' }, 'unknown field "email"'],
    [{ redirectUrl: REDIRECT, tags: 'x' }, 'tags must be an array of strings'],
    [{ redirectUrl: REDIRECT, clientName: 7 }, 'clientName must be a string'],
    [{ redirectUrl: `${REDIRECT}#frag` }, 'redirectUrl may not have a fragment'],
    [{ redirectUrl: REDIRECT, clientName: 'api_krwNv9daBkrjAsqvUsioINzXPTNmmal61XcGdw' }, 'clientName may not hold an API key'],
    [{ redirectUrl: REDIRECT, tags: ['ok', 'scoped_krwNv9daBkrjAsqvUsioINzXPTNmmal61XcGdw'] }, 'tags[1] may not hold an API key'],
    [{ redirectUrl: `${REDIRECT}?k=api_krwNv9daBkrjAsqvUsioINzXPTNmmal61XcGdw` }, 'redirectUrl may not hold an API key'],
    [{ redirectUrl: `${REDIRECT}?k=api%255FkrwNv9daBkrjAsqvUsioINzXPTNmmal61XcGdw` }, 'redirectUrl may not hold an API key'],
    [{ redirectUrl: REDIRECT, customerInfo: { api_krwNv9daBkrjAsqvUsioINzXPTNmmal61XcGdw: 'x' } }, 'may not hold an API key'],
    // Other spellings that still carry the secret: percent-encoded (also twice), another separator, fullwidth.
    [{ redirectUrl: REDIRECT, clientName: 'scoped%5FkrwNv9daBkrjAsqvUsioINzXPTNmmal61XcGdw' }, 'clientName may not hold an API key'],
    [{ redirectUrl: REDIRECT, state: 'scoped%255FkrwNv9daBkrjAsqvUsioINzXPTNmmal61XcGdw' }, 'may not hold an API key'],
    [{ redirectUrl: REDIRECT, tags: ['scoped.krwNv9daBkrjAsqvUsioINzXPTNmmal61XcGdw'] }, 'may not hold an API key'],
    [{ redirectUrl: REDIRECT, clientName: 'scoped+krwNv9daBkrjAsqvUsioINzXPTNmmal61XcGdw' }, 'may not hold an API key'],
    [{ redirectUrl: REDIRECT, customerInfo: { note: '\uff53\uff43\uff4f\uff50\uff45\uff44_krwNv9daBkrjAsqvUsioINzXPTNmmal61XcGdw' } }, 'may not hold an API key'],
  ])('refuses a bad body %j with 400 naming the field', async (body, message) => {
    const r = await createLink(port, connectKey.key, body);
    expect(r.status).toBe(400);
    const e = errorBody(r);
    expect(e.error.code).toBe('INVALID_FIELD');
    expect(e.error.message).toContain(message);
    expect(backend.received).toEqual([]);
  });

  it('refuses a query parameter (400 INVALID_PARAMETER naming it) rather than ignoring it', async () => {
    const r = await send(port, {
      method: 'POST',
      path: '/v1/connections?referenceId=bob&x=1',
      headers: { 'texture-api-key': server.key, 'content-type': 'application/json' },
      body: JSON.stringify({ redirectUrl: REDIRECT }),
    });
    expect(r.status, r.text).toBe(400);
    expect(r.json).toMatchObject({ error: { code: 'INVALID_PARAMETER', field: 'referenceId' } });
  });

  it('refuses a body that is not JSON or repeats a key', async () => {
    const dup = await send(port, {
      method: 'POST',
      path: '/v1/connections',
      headers: { ...keyHeader(connectKey), 'content-type': 'application/json' },
      body: `{"redirectUrl":"${REDIRECT}","redirectUrl":"https://evil.test/"}`,
    });
    expect(dup.status).toBe(400);
    expect(errorBody(dup).error.code).toBe('DUPLICATE_JSON_KEY');
    const form = await send(port, {
      method: 'POST',
      path: '/v1/connections',
      headers: { ...keyHeader(connectKey), 'content-type': 'application/x-www-form-urlencoded' },
      body: `redirectUrl=${REDIRECT}`,
    });
    expect(form.status).toBe(415);
  });

  it.each([
    'https://evil.example/connected',
    `${REDIRECT}/more`,
    `${APP}/connecte`,
    `${APP}.evil.test/connected`,
    `http://app.example.com/connected`,
    `${APP}:8443/connected`,
    'myapp://connected/other',
    'otherapp://connected',
  ])('a connect key may redirect only to its registered URLs, exactly: %s → 400 REDIRECT_NOT_ALLOWED', async (redirectUrl) => {
    const r = await createLink(port, connectKey.key, { redirectUrl });
    expect(r.status).toBe(400);
    expect(errorBody(r).error.code).toBe('REDIRECT_NOT_ALLOWED');
  });

  it('a registered URL may carry a query of its own; an app scheme works when registered', async () => {
    expect((await createLink(port, connectKey.key, { redirectUrl: `${REDIRECT}?from=settings` })).status).toBe(201);
    expect((await createLink(port, connectKey.key, { redirectUrl: 'myapp://connected' })).status).toBe(201);
  });

  it('a server key may use any https URL, not plain http it did not register', async () => {
    expect((await createLink(port, server.key, { redirectUrl: 'https://backend-chosen.example/cb' })).status).toBe(201);
    const r = await createLink(port, server.key, { redirectUrl: 'http://backend-chosen.example/cb' });
    expect(r.status).toBe(400);
    expect(errorBody(r).error.code).toBe('REDIRECT_NOT_ALLOWED');
  });

  it('a public connect key may not choose the referenceId (403 REFERENCE_ID_NOT_ALLOWED) unless created with --allow-reference-id; a server key may', async () => {
    const r = await createLink(port, connectKey.key, { redirectUrl: REDIRECT, referenceId: 'alice' });
    expect(r.status).toBe(403);
    expect(errorBody(r).error.code).toBe('REFERENCE_ID_NOT_ALLOWED');
    expect(((await createLink(port, trustedConnect.key, { redirectUrl: REDIRECT, referenceId: 'alice' })).json as Link).referenceId).toBe('alice');
    expect(((await createLink(port, server.key, { redirectUrl: REDIRECT, referenceId: 'bob' })).json as Link).referenceId).toBe('bob');
  });

  it('a scoped key may not create links; no key is 401', async () => {
    expect((await createLink(port, alice.key, { redirectUrl: REDIRECT })).status).toBe(403);
    const r = await send(port, { method: 'POST', path: '/v1/connections', headers: { 'content-type': 'application/json' }, body: `{"redirectUrl":"${REDIRECT}"}` });
    expect(r.status).toBe(401);
    expect(backend.received).toEqual([]);
  });
});

describe('the SDK script', () => {
  it('is served with or without a key header (an app that adds its key to every call): the key is not looked at, nothing forwarded', async () => {
    const plain = await send(port, { path: '/connect/sdk.js' });
    expect(plain.status, plain.text).toBe(200);
    expect(String(plain.headers['content-type'])).toMatch(/javascript/);
    for (const key of [connectKey.key, alice.key, 'scoped_not_a_key']) {
      const r = await send(port, { path: '/connect/sdk.js', headers: { 'texture-api-key': key } });
      expect(r.status, r.text).toBe(200);
      expect(r.text).toBe(plain.text);
    }
    expect(backend.received).toEqual([]);
  });

  it('nothing under /connect, in any case, is forwarded, even for a full-access key: unknown paths are 404 NOT_FOUND, another method on a script 405', async () => {
    for (const [method, path, status, code] of [
      ['GET', '/connect/nope', 404, 'NOT_FOUND'],
      ['GET', '/connect', 404, 'NOT_FOUND'],
      ['GET', '/connect?x=1', 404, 'NOT_FOUND'],
      ['GET', '/Connect/sdk.js', 404, 'NOT_FOUND'],
      ['GET', '/CONNECT/links/abc', 404, 'NOT_FOUND'],
      ['POST', '/connect/sdk.js', 405, 'METHOD_NOT_ALLOWED'],
      ['DELETE', '/connect/handback.js', 405, 'METHOD_NOT_ALLOWED'],
      ['GET', '/%63onnect/x', 404, 'NOT_FOUND'],
      ['GET', '/conn%65ct/sdk.js', 404, 'NOT_FOUND'],
      ['GET', '/connec%74', 404, 'NOT_FOUND'],
      ['POST', '/conn%65ct/links/abc', 404, 'NOT_FOUND'],
      ['GET', '/%43onnect/sdk.js', 404, 'NOT_FOUND'],
      ['GET', '/%EF%BD%83onnect/sdk.js', 404, 'NOT_FOUND'],
    ] as Array<[string, string, number, string]>) {
      for (const headers of [{}, { 'texture-api-key': server.key }] as Array<Record<string, string>>) {
        const r = await send(port, { method, path, headers });
        expect(r.status, `${method} ${path}`).toBe(status);
        expect(errorBody(r).error.code, `${method} ${path}`).toBe(code);
        if (status === 405) expect(r.headers.allow).toBe('GET, HEAD');
      }
    }
    expect(backend.received).toEqual([]);
    // Paths that only begin alike stay the backend's.
    await send(port, { path: '/connections', headers: { 'texture-api-key': server.key } });
    expect(backend.received.map((x) => x.url)).toEqual(['/connections']);
  });
});

describe('the hosted page', () => {
  it('shows who asks, what the key may do and which devices, with no-store, no-referrer, no framing and a strict CSP', async () => {
    const link = await newLink(port, server.key, { redirectUrl: REDIRECT, referenceId: 'alice', clientName: 'Acme <b>Energy</b>' });
    const r = await new FormBrowser().get(port, pagePath(link));
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.headers['referrer-policy']).toBe('no-referrer');
    expect(r.headers['x-frame-options']).toBe('DENY');
    expect(r.headers['content-security-policy']).toMatch(/default-src 'none'.*frame-ancestors 'none'/);
    expect(r.headers['set-cookie']?.[0]).toMatch(/HttpOnly; SameSite=Lax; Secure$/);
    expect(r.text).toContain('Acme &lt;b&gt;Energy&lt;/b&gt; wants to use your devices');
    expect(r.text).toContain('see your devices and their history');
    expect(r.text).toContain('send commands to them');
    expect(r.text).toContain('Alice thermostat');
    expect(r.text).not.toContain('Bob');
    expect(r.text).toContain('app.example.com');
    // The device read went to the backend server to server, filtered to the link's user.
    expect(backend.received.map((x) => x.url)).toEqual(['/v1/devices?referenceId=alice&perPage=100']);
    expect(backend.received[0]!.headers['texture-api-key']).toBeUndefined();
  });

  it("finishing mints one scoped key for the link's user, delivered by 303 to the registered redirect with its own query and state", async () => {
    const link = await newLink(port, server.key, { redirectUrl: `${REDIRECT}?from=settings&texture_scoped_key=forged`, referenceId: 'alice', state: 'opaque state/1' });
    const r = await finishLink(port, link);
    const location = new URL(r.headers.location!);
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT);
    expect(location.searchParams.get('from')).toBe('settings');
    expect(location.searchParams.getAll('texture_scoped_key')).toHaveLength(1);
    expect(location.searchParams.get('state')).toBe('opaque state/1');
    const key = scopedKeyOf(r);
    expect(key).toMatch(/^scoped_/);
    backend.reset();
    const mine = await send(port, { path: '/v1/devices', headers: keyHeader(key) });
    expect(mine.status).toBe(200);
    expect(backend.received[0]!.url).toBe('/v1/devices?referenceId=alice');
    expect((await send(port, { path: '/v1/devices/dev-bob-1', headers: keyHeader(key) })).status).toBe(403);
    expect((await send(port, { path: '/v1/sites', headers: keyHeader(key) })).status).toBe(403);
  });

  it("a creator's query cannot put a key of its own before the real one, under any spelling a framework reads as its name", async () => {
    const forged = 'a=1;texture_scoped_key=scoped_FORGED;b=2&Texture_Scoped_Key=scoped_FORGED2&texture.scoped.key=scoped_FORGED3&%74exture_scoped_key[]=scoped_FORGED4';
    const link = await newLink(port, server.key, { redirectUrl: `${REDIRECT}?${forged}`, referenceId: 'alice' });
    const r = await finishLink(port, link);
    const location = r.headers.location!;
    expect(location).not.toContain('FORGED');
    expect(location.startsWith(`${REDIRECT}?a=1;b=2&texture_scoped_key=scoped_`), location).toBe(true);
    // Cancelled, no key of Keygate's follows: none of the creator's may stand in for it (PHP reads texture[scoped_key as texture_scoped_key).
    const cancelled = await newLink(port, server.key, { redirectUrl: `${REDIRECT}?texture[scoped_key=scoped_FORGED5&texture-scoped-key=scoped_FORGED6&keep=1`, referenceId: 'alice' });
    const browser = new FormBrowser();
    const page = await browser.get(port, pagePath(cancelled));
    const denied = await browser.post(port, pagePath(cancelled), { csrf: csrfOf(page.text), action: 'deny' });
    expect(denied.status).toBe(303);
    expect(denied.headers.location).toBe(`${REDIRECT}?keep=1&error=access_denied`);
  });

  it('works once: a reused link gets 410 and mints nothing; a tampered or unknown token gets 410', async () => {
    const link = await newLink(port, server.key, { redirectUrl: REDIRECT, referenceId: 'alice' });
    const browser = new FormBrowser();
    const page = await browser.get(port, pagePath(link));
    const csrf = csrfOf(page.text);
    expect((await browser.post(port, pagePath(link), { csrf, action: 'allow' })).status).toBe(303);
    const again = await browser.post(port, pagePath(link), { csrf, action: 'allow' });
    expect(again.status).toBe(410);
    expect(again.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(again.text).toContain('already been used');
    expect((await browser.get(port, pagePath(link))).status).toBe(410);
    const tampered = pagePath(link).slice(0, -2) + (link.linkToken.endsWith('AA') ? 'BB' : 'AA');
    const t = await browser.get(port, tampered);
    expect(t.status).toBe(410);
    expect(t.text).toContain('not valid');
  });

  it('under an https --public-url the cookie is __Host- (Secure, Path=/, no Domain), and one of the name without the prefix is not read', async () => {
    const link = await newLink(port, server.key, { redirectUrl: REDIRECT, referenceId: 'alice' });
    const browser = new FormBrowser();
    const page = await browser.get(port, pagePath(link));
    const name = `__Host-keygate_link_${link.id}`;
    expect(page.headers['set-cookie']).toEqual([expect.stringMatching(new RegExp(`^${name}=[A-Za-z0-9_-]{43}\\.[A-Za-z0-9_-]{43}; Path=/; Max-Age=\\d+; HttpOnly; SameSite=Lax; Secure$`))]);
    // The very value Keygate issued, tossed under the plain name (as a sibling subdomain can): no session.
    const tossed = new FormBrowser();
    tossed.cookies.set(`keygate_link_${link.id}`, browser.cookies.get(name)!);
    expect((await tossed.post(port, pagePath(link), { csrf: csrfOf(page.text), action: 'allow' })).status).toBe(403);
    expect((await browser.post(port, pagePath(link), { csrf: csrfOf(page.text), action: 'allow' })).status).toBe(303);
  });

  it("a view binds nothing (a link scanner does not take the link); every form needs the CSRF token of its own browser's session", async () => {
    const link = await newLink(port, server.key, { redirectUrl: REDIRECT, referenceId: 'alice' });
    const scanner = new FormBrowser();
    const scanned = await scanner.get(port, pagePath(link));
    expect(scanned.status).toBe(200);
    const user = new FormBrowser();
    const page = await user.get(port, pagePath(link));
    expect(page.status).toBe(200);
    expect(csrfOf(page.text)).not.toBe(csrfOf(scanned.text));
    // Another browser's token, a forged one, a form from another site: refused, and none of them uses the link up.
    expect((await scanner.post(port, pagePath(link), { csrf: csrfOf(page.text), action: 'allow' })).status).toBe(403);
    expect((await user.post(port, pagePath(link), { csrf: 'forged', action: 'allow' })).status).toBe(403);
    expect((await user.post(port, pagePath(link), { csrf: csrfOf(page.text), action: 'allow' }, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await new FormBrowser().post(port, pagePath(link), { csrf: csrfOf(page.text), action: 'allow' })).status).toBe(403);
    expect((await user.post(port, pagePath(link), { csrf: csrfOf(page.text), action: 'allow' })).status).toBe(303);
    expect((await scanner.get(port, pagePath(link))).status).toBe(410);
  });

  it("a form post that is none of the page's forms (another action, another case of one) says so, mints nothing and leaves the link usable", async () => {
    const link = await newLink(port, server.key, { redirectUrl: REDIRECT, referenceId: 'alice' });
    const browser = new FormBrowser();
    const page = await browser.get(port, pagePath(link));
    const csrf = csrfOf(page.text);
    for (const action of ['ALLOW', 'grant', '']) {
      const r = await browser.post(port, pagePath(link), { csrf, action });
      expect(r.status, action).toBe(403);
      expect(r.text).toContain("not one of this page's forms");
      expect(r.text).not.toContain('another browser');
    }
    expect((await browser.post(port, pagePath(link), { csrf, action: 'allow' })).status).toBe(303);
  });

  it('cancel sends the user back with error=access_denied and uses the link up', async () => {
    const link = await newLink(port, server.key, { redirectUrl: REDIRECT, referenceId: 'alice', state: 's' });
    const browser = new FormBrowser();
    const page = await browser.get(port, pagePath(link));
    const r = await browser.post(port, pagePath(link), { csrf: csrfOf(page.text), action: 'deny' });
    expect(r.status).toBe(303);
    const location = new URL(r.headers.location!);
    expect(location.searchParams.get('error')).toBe('access_denied');
    expect(location.searchParams.get('texture_scoped_key')).toBeNull();
    expect((await browser.get(port, pagePath(link))).status).toBe(410);
  });

  it('a user without devices has nothing to allow (consent over the devices the backend has)', async () => {
    const link = await newLink(port, connectKey.key, { redirectUrl: REDIRECT });
    const browser = new FormBrowser();
    const page = await browser.get(port, pagePath(link));
    expect(page.text).toContain('No devices are connected for you yet');
    expect(page.text).not.toContain('value="allow"');
    expect((await browser.post(port, pagePath(link), { csrf: csrfOf(page.text), action: 'allow' })).status).toBe(403);
  });

  it('of 50 concurrent finishes of one link exactly one mints a key; the others get 410', async () => {
    const link = await newLink(port, server.key, { redirectUrl: REDIRECT, referenceId: 'alice' });
    const browser = new FormBrowser();
    const csrf = csrfOf((await browser.get(port, pagePath(link))).text);
    const answers = await Promise.all(Array.from({ length: 50 }, () => browser.post(port, pagePath(link), { csrf, action: 'allow' })));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses.filter((s) => s === 303)).toHaveLength(1);
    expect(statuses.filter((s) => s === 410)).toHaveLength(49);
  });
});

describe('who a link mints a key for (invariant 12)', () => {
  const json = { 'content-type': 'application/json' };
  const apiKeys = async (key: string, query: string): Promise<Array<{ id: string; referenceId: string; expiresAt: string | null; createdBy: string }>> =>
    ((await send(port, { path: `/v1/api-keys?${query}`, headers: keyHeader(key) })).json as { data: Array<{ id: string; referenceId: string; expiresAt: string | null; createdBy: string }> }).data;
  const finishes = async (link: Link): Promise<Res> => {
    const browser = new FormBrowser();
    const page = await browser.get(port, pagePath(link));
    return page.status === 200 ? browser.post(port, pagePath(link), { csrf: csrfOf(page.text), action: 'allow' }) : page;
  };

  it('a token that may only create links may not name the user: the key would be more than its own (403 ESCALATION_REFUSED); a fresh user it may', async () => {
    const minter = await createKeyWith(store, 'access-token', ['--role', 'connect-link', '--allow-redirect', REDIRECT]);
    for (const referenceId of ['bob', 'alice']) {
      const r = await createLink(port, minter.key, { redirectUrl: REDIRECT, referenceId });
      expect(r.status, `${referenceId}: ${r.text}`).toBe(403);
      expect(errorBody(r).error.code).toBe('ESCALATION_REFUSED');
    }
    const fresh = await newLink(port, minter.key, { redirectUrl: REDIRECT });
    expect(fresh.referenceId).toMatch(/^texture-generated:/);
    expect(backend.received.filter((x) => x.url.startsWith('/v1/connections'))).toEqual([]);
  });

  it('a token bound to a user may name that user and no other', async () => {
    const own = await createKeyWith(store, 'access-token', ['--role', 'device-owner', '--role', 'connect-link', '--reference-id', 'alice', '--allow-redirect', REDIRECT]);
    expect((await createLink(port, own.key, { redirectUrl: REDIRECT, referenceId: 'alice' })).status).toBe(201);
    const other = await createLink(port, own.key, { redirectUrl: REDIRECT, referenceId: 'bob' });
    expect(other.status).toBe(403);
    expect(errorBody(other).error.code).toBe('ESCALATION_REFUSED');
  });

  it('the key a link mints expires no later than the key that made the link', async () => {
    const brief = await createKeyWith(store, 'server', ['--expires-in', '1h']);
    const link = await newLink(port, brief.key, { redirectUrl: REDIRECT, referenceId: 'alice' });
    const minted = scopedKeyOf(await finishLink(port, link));
    expect((await send(port, { path: '/v1/devices', headers: keyHeader(minted) })).status).toBe(200);
    const made = (await apiKeys(server.key, 'type=scoped&referenceId=alice&perPage=100')).find((k) => k.createdBy === `link:${link.id}`);
    expect(made?.expiresAt).toBe(brief.expiresAt);
    // A maker without an expiry: the key does not expire either.
    const forever = await newLink(port, server.key, { redirectUrl: REDIRECT, referenceId: 'alice' });
    await finishLink(port, forever);
    expect((await apiKeys(server.key, 'type=scoped&referenceId=alice&perPage=100')).find((k) => k.createdBy === `link:${forever.id}`)?.expiresAt).toBeNull();
  });

  it('the maker is judged again when the link is finished: one that lost the power since mints nothing, and the key takes its current origins', async () => {
    const patch = (id: string, body: unknown) => send(port, { method: 'PATCH', path: `/v1/api-keys/${id}`, headers: { ...keyHeader(server.key), ...json }, body: JSON.stringify(body) });
    // A token that could make the key when it made the link, narrowed before the link is finished.
    const wide = await createKeyWith(store, 'access-token', ['--role', 'full-access']);
    const byToken = await newLink(port, wide.key, { redirectUrl: REDIRECT, referenceId: 'bob' });
    expect((await patch(wide.id, { roles: ['connect-link'] })).status).toBe(200);
    const narrowed = await finishes(byToken);
    expect(narrowed.status).toBe(410);
    expect(narrowed.headers.location).toBeUndefined();
    // A user it chose whose id has the generated form (one an earlier link drew, say) is a
    // chosen user all the same, and judged again too.
    const drawn = `texture-generated:${crypto.randomUUID()}`;
    const wideAgain = await createKeyWith(store, 'access-token', ['--role', 'full-access']);
    const byDrawn = await newLink(port, wideAgain.key, { redirectUrl: REDIRECT, referenceId: drawn });
    expect(byDrawn.referenceId).toBe(drawn);
    expect((await patch(wideAgain.id, { roles: ['connect-link'] })).status).toBe(200);
    expect((await finishes(byDrawn)).status).toBe(410);
    // A token that may no longer create links at all (its roles cleared) finishes none it made before.
    const lapsed = await createKeyWith(store, 'access-token', ['--role', 'connect-link', '--allow-redirect', REDIRECT]);
    const byLapsed = await newLink(port, lapsed.key, { redirectUrl: REDIRECT });
    expect((await patch(lapsed.id, { roles: [] })).status).toBe(200);
    expect((await createLink(port, lapsed.key, { redirectUrl: REDIRECT })).status).toBe(403);
    const lapsedPage = await new FormBrowser().get(port, pagePath(byLapsed));
    expect(lapsedPage.status).toBe(410);
    // Nor one given conditions since (a key with conditions may not create links).
    const bound = await createKeyWith(store, 'access-token', ['--role', 'connect-link', '--allow-redirect', REDIRECT]);
    const byBound = await newLink(port, bound.key, { redirectUrl: REDIRECT });
    expect((await patch(bound.id, { conditions: { referenceId: ['alice'] } })).status).toBe(200);
    expect((await createLink(port, bound.key, { redirectUrl: REDIRECT })).status).toBe(403);
    expect((await new FormBrowser().get(port, pagePath(byBound))).status).toBe(410);
    // A connect key whose --allow-reference-id was taken away.
    const trusted = await createKeyWith(store, 'connect', ['--allow-origin', APP, '--allow-redirect', REDIRECT, '--allow-reference-id']);
    const byConnect = await newLink(port, trusted.key, { redirectUrl: REDIRECT, referenceId: 'bob' });
    expect((await patch(trusted.id, { allowReferenceId: false })).status).toBe(200);
    expect((await finishes(byConnect)).status).toBe(410);
    const minted = (await apiKeys(server.key, 'type=scoped&referenceId=bob&perPage=100')).filter((k) => k.createdBy === `link:${byToken.id}` || k.createdBy === `link:${byConnect.id}`);
    expect(minted).toEqual([]);
    // Origins changed meanwhile: the key gets the maker's origins as they are now.
    const other = 'https://other.example.com';
    const again = await createKeyWith(store, 'connect', ['--allow-origin', APP, '--allow-redirect', REDIRECT, '--allow-reference-id']);
    const link = await newLink(port, again.key, { redirectUrl: REDIRECT, referenceId: 'alice' });
    expect((await patch(again.id, { allowedOrigins: [other] })).status).toBe(200);
    const key = scopedKeyOf(await finishes(link));
    const made = (await send(port, { path: `/v1/api-keys?type=scoped&referenceId=alice&perPage=100`, headers: keyHeader(server.key) })).json as {
      data: Array<{ createdBy: string; allowedOrigins: string[] }>;
    };
    expect(made.data.find((k) => k.createdBy === `link:${link.id}`)?.allowedOrigins).toEqual([other]);
    expect((await send(port, { path: '/v1/devices', headers: { ...keyHeader(key), origin: APP } })).status).toBe(403);
  });

  it("a link to a redirect taken off its maker's list since mints nothing (410), and the key stays undelivered", async () => {
    const old = 'https://old-app.example.net/cb';
    const maker = await createKeyWith(store, 'connect', ['--allow-origin', APP, '--allow-redirect', REDIRECT, '--allow-redirect', old, '--allow-reference-id']);
    const stale = await newLink(port, maker.key, { redirectUrl: old, referenceId: 'bob' });
    const kept = await newLink(port, maker.key, { redirectUrl: REDIRECT, referenceId: 'bob' });
    const patched = await send(port, {
      method: 'PATCH',
      path: `/v1/api-keys/${maker.id}`,
      headers: { ...keyHeader(server.key), 'content-type': 'application/json' },
      body: JSON.stringify({ allowedRedirects: [REDIRECT] }),
    });
    expect(patched.status, patched.text).toBe(200);
    const browser = new FormBrowser();
    const page = await browser.get(port, pagePath(stale));
    const r = page.status === 200 ? await browser.post(port, pagePath(stale), { csrf: csrfOf(page.text), action: 'allow' }) : page;
    expect(r.status, r.text.slice(0, 200)).toBe(410);
    expect(r.headers.location).toBeUndefined();
    expect((await apiKeys(server.key, 'type=scoped&perPage=100')).filter((k) => k.createdBy === `link:${stale.id}`)).toEqual([]);
    expect(scopedKeyOf(await finishLink(port, kept))).toMatch(/^scoped_/);
  });

  it("a link is bound to the secret that made it: after a rotation, the old secret's links mint keys that end with its grace, or nothing once it is gone", async () => {
    const owner = await createKeyWith(store, 'server');
    const rotate = async (grace: number): Promise<{ key: string; previousKeyExpiresAt: string | null }> => {
      const r = await send(port, { method: 'POST', path: `/v1/api-keys/${owner.id}/rotate`, headers: { ...keyHeader(server.key), ...json }, body: JSON.stringify({ gracePeriodSeconds: grace }) });
      expect(r.status, r.text).toBe(200);
      return r.json as { key: string; previousKeyExpiresAt: string | null };
    };
    // Made by a secret that is then rotated away at once: nothing.
    const before = await newLink(port, owner.key, { redirectUrl: REDIRECT, referenceId: 'bob' });
    const first = await rotate(0);
    backend.reset();
    // Not even its page: the user's devices are not read for it.
    const page = await new FormBrowser().get(port, pagePath(before));
    expect(page.status, page.text.slice(0, 200)).toBe(410);
    expect(backend.received.filter((x) => x.url.includes('referenceId=bob'))).toEqual([]);
    const gone = await finishes(before);
    expect(gone.status, gone.text.slice(0, 200)).toBe(410);
    expect((await apiKeys(server.key, 'type=scoped&referenceId=bob&perPage=100')).filter((k) => k.createdBy === `link:${before.id}`)).toEqual([]);
    // Rotated with a grace: the old secret still makes links, which end with it, as do their keys.
    const second = await rotate(120);
    const graceEnd = Date.parse(second.previousKeyExpiresAt!);
    const inGrace = await newLink(port, first.key, { redirectUrl: REDIRECT, referenceId: 'alice' });
    expect(Date.parse(inGrace.expiresAt)).toBeLessThanOrEqual(graceEnd);
    scopedKeyOf(await finishes(inGrace));
    const minted = (await apiKeys(server.key, 'type=scoped&referenceId=alice&perPage=100')).find((k) => k.createdBy === `link:${inGrace.id}`);
    expect(minted?.expiresAt).not.toBeNull();
    expect(Date.parse(minted!.expiresAt!)).toBeLessThanOrEqual(graceEnd);
    // The current secret's links mint keys that do not expire.
    const current = await newLink(port, second.key, { redirectUrl: REDIRECT, referenceId: 'alice' });
    scopedKeyOf(await finishes(current));
    expect((await apiKeys(server.key, 'type=scoped&referenceId=alice&perPage=100')).find((k) => k.createdBy === `link:${current.id}`)?.expiresAt).toBeNull();
  });

  it('a link whose maker was revoked before it was finished mints nothing (410 LINK_GONE), for a connect key too', async () => {
    for (const type of ['server', 'connect']) {
      const maker = await createKeyWith(store, type, type === 'connect' ? ['--allow-origin', APP, '--allow-redirect', REDIRECT, '--allow-reference-id'] : []);
      const link = await newLink(port, maker.key, { redirectUrl: REDIRECT, referenceId: 'bob' });
      const browser = new FormBrowser();
      const page = await browser.get(port, pagePath(link));
      expect(page.status).toBe(200);
      expect((await send(port, { method: 'DELETE', path: `/v1/api-keys/${maker.id}`, headers: { ...keyHeader(server.key), ...json } })).status).toBe(200);
      const r = await browser.post(port, pagePath(link), { csrf: csrfOf(page.text), action: 'allow' });
      expect(r.status, type).toBe(410);
      expect(r.headers.location).toBeUndefined();
      expect(r.text).toContain('not valid');
      expect(
        (await apiKeys(server.key, 'type=scoped&referenceId=bob&perPage=100')).filter((k) => k.createdBy === `link:${link.id}`),
        type,
      ).toEqual([]);
    }
  });
});

describe('expiry', () => {
  it('a link past --connect-link-ttl gets 410 and mints nothing', async () => {
    const short = await startSidecar({ upstream: backend.url, store, env: { KEYGATE_PUBLIC_URL: PUBLIC_URL, KEYGATE_CONNECT_LINK_TTL: '1s' } });
    try {
      const link = await newLink(short.proxyPort, server.key, { redirectUrl: REDIRECT, referenceId: 'alice' });
      const browser = new FormBrowser();
      const csrf = csrfOf((await browser.get(short.proxyPort, pagePath(link))).text);
      await new Promise((r) => setTimeout(r, 1100));
      const r = await browser.post(short.proxyPort, pagePath(link), { csrf, action: 'allow' });
      expect(r.status).toBe(410);
      expect(r.text).toContain('expired');
    } finally {
      await short.stop();
    }
  });
});

describe('--public-url with a path (an ingress that serves Keygate under it and strips it)', () => {
  it('the link URL, the form, and the cookie are under the path, and the link finishes through the ingress', async () => {
    const gated = await startSidecar({ upstream: backend.url, store, policies: policyWithLimits(null), env: { KEYGATE_PUBLIC_URL: 'http://keygate.example.test/gate/' } });
    try {
      // The ingress: what the browser sends to /gate/… reaches Keygate without /gate.
      const strip = (path: string): string => {
        expect(path.startsWith('/gate/'), path).toBe(true);
        return path.slice('/gate'.length);
      };
      const link = await newLink(gated.proxyPort, server.key, { redirectUrl: REDIRECT, referenceId: 'alice' });
      expect(link.linkUrl).toMatch(/^http:\/\/keygate\.example\.test\/gate\/connect\/links\/[A-Za-z0-9_-]{43}$/);
      const browser = new FormBrowser();
      const page = await browser.get(gated.proxyPort, strip(pagePath(link)));
      expect(page.status, page.text).toBe(200);
      const action = /<form method="post" action="([^"]+)"/.exec(page.text)?.[1];
      expect(action).toBe(pagePath(link));
      expect(String(page.headers['set-cookie'])).toContain('Path=/gate/connect/');
      const done = await browser.post(gated.proxyPort, strip(action!), { csrf: csrfOf(page.text), action: 'allow' });
      expect(scopedKeyOf(done)).toMatch(/^scoped_/);
    } finally {
      await gated.stop();
    }
  });
});

describe('secrets in logs', () => {
  it('no link token, minted key or key secret appears in any log line', async () => {
    const link = await newLink(port, connectKey.key, { redirectUrl: REDIRECT });
    const served = await newLink(port, server.key, { redirectUrl: REDIRECT, referenceId: 'alice' });
    const key = scopedKeyOf(await finishLink(port, served));
    await new FormBrowser().get(port, pagePath(link));
    await send(port, { path: '/v1/devices', headers: keyHeader(key) });
    await new Promise((r) => setTimeout(r, 300));
    const out = sidecar.stdout() + sidecar.stderr();
    for (const secret of [link.linkToken, served.linkToken, key, connectKey.key, server.key]) expect(out).not.toContain(secret);
    const access = sidecar.logs().filter((l) => l.msg === 'access' && String(l.route).includes('/connect/links/'));
    expect(access.length).toBeGreaterThan(0);
    for (const line of access) expect(line.path).toBe('/connect/links/{token}');
  });

  it('a link URL under a spelling no route matches (an unstripped ingress prefix, //, %2F, ..) is refused and its token is not logged', async () => {
    const link = await newLink(port, connectKey.key, { redirectUrl: REDIRECT });
    const t = link.linkToken;
    const spellings = [`/keygate/connect/links/${t}`, `//connect/links/${t}`, `/%2Fconnect/links/${t}`, `/x/../connect/links/${t}`, `/v1/connect/LINKS/${t}/return`, `/keygate/connect/%6Cinks/${t}`];
    for (const path of spellings) {
      const r = await send(port, { path });
      expect(r.status, path).toBeGreaterThanOrEqual(400);
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(sidecar.stdout() + sidecar.stderr()).not.toContain(t);
    const lines = sidecar.logs().filter((l) => l.msg === 'access' && String(l.path).includes('{token}'));
    expect(lines.length).toBeGreaterThanOrEqual(spellings.length);
  });
});
