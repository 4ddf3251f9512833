// The Connect flow on the shared PostgreSQL store: one link finished 50 times at once
// through two sidecar processes on one schema mints exactly one key; links expire and
// are single use there as in SQLite. A schema of its own, dropped afterwards.
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyWith, csrfOf, FormBrowser, type Link, newLink, pagePath } from '../blackbox/connect-client.ts';
import { type Backend, keyHeader, POLICIES, type Sidecar, send, startBackend, startSidecar } from '../blackbox/harness.ts';

const PG_BASE = process.env.KEYGATE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const SCHEMA = `kg_test_${process.pid}_${randomBytes(4).toString('hex')}_connect`;
const STORE = `${PG_BASE}?schema=${SCHEMA}`;
const REDIRECT = 'https://app.example.com/connected';

let admin: pg.Client;
let backend: Backend;
let a: Sidecar;
let b: Sidecar;

beforeAll(async () => {
  admin = new pg.Client({ connectionString: PG_BASE });
  await admin.connect();
  backend = await startBackend();
  [a, b] = await Promise.all([startSidecar({ upstream: backend.url, store: STORE }), startSidecar({ upstream: backend.url, store: STORE })]);
}, 60_000);

afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await backend?.close();
  await admin?.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  await admin?.end();
});

describe('Connect links on PostgreSQL', () => {
  it('50 concurrent finishes of one link through two sidecar processes mint exactly one key', async () => {
    const server = await createKeyWith(STORE, 'server');
    const link = await newLink(a.proxyPort, server.key, { redirectUrl: REDIRECT, referenceId: 'alice' });
    const browser = new FormBrowser();
    const csrf = csrfOf((await browser.get(a.proxyPort, pagePath(link))).text);
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => browser.post(i % 2 === 0 ? a.proxyPort : b.proxyPort, pagePath(link), { csrf, action: 'allow' })));
    const minted = answers.filter((r) => r.status === 303);
    expect(minted).toHaveLength(1);
    expect(answers.filter((r) => r.status === 410)).toHaveLength(49);
    const { rows } = await admin.query(`SELECT id, created_by, link_id, reference_id FROM ${SCHEMA}.keygate_keys WHERE link_id = $1`, [link.id]);
    expect(rows).toEqual([{ id: expect.any(String), created_by: `link:${link.id}`, link_id: link.id, reference_id: 'alice' }]);
    const key = new URL(minted[0]!.headers.location!).searchParams.get('texture_scoped_key')!;
    // Either replica serves the minted key.
    expect((await send(b.proxyPort, { path: '/v1/devices', headers: keyHeader(key) })).status).toBe(200);
    const stored = await admin.query(`SELECT token_hash, used_at, outcome, key_id FROM ${SCHEMA}.keygate_connect_links WHERE id = $1`, [link.id]);
    expect(stored.rows[0].token_hash).not.toContain(link.linkToken);
    expect(stored.rows[0].token_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(stored.rows[0]).toMatchObject({ outcome: 'key', key_id: rows[0].id });
  });

  it('a link opened on one replica and finished on the other is used up on both', async () => {
    const server = await createKeyWith(STORE, 'server');
    const link = await newLink(b.proxyPort, server.key, { redirectUrl: REDIRECT, referenceId: 'bob' });
    const browser = new FormBrowser();
    const csrf = csrfOf((await browser.get(a.proxyPort, pagePath(link))).text);
    expect((await browser.post(b.proxyPort, pagePath(link), { csrf, action: 'allow' })).status).toBe(303);
    expect((await browser.get(a.proxyPort, pagePath(link))).status).toBe(410);
    expect((await browser.post(a.proxyPort, pagePath(link), { csrf, action: 'allow' })).status).toBe(410);
  });

  it("with a confirmed device step: the step's state brought back to another browser ends the step on both replicas, and a refused code ends it too", async () => {
    const policies = mkdtempSync(join(tmpdir(), 'kg-pg-step-'));
    copyFileSync(join(POLICIES, 'texture.yaml'), join(policies, 'texture.yaml'));
    writeFileSync(
      join(policies, 'connect.yaml'),
      `version: 1\nconnect:\n  deviceStep: '${backend.url}/step?referenceId={referenceId}&returnTo={returnUrl}&state={state}'\n  deviceStepConfirm: /step/confirm\n`,
    );
    backend.responder = (rec) => (rec.url === '/step/confirm' ? { status: 404, body: '{}' } : undefined);
    const [c, d] = await Promise.all([startSidecar({ upstream: backend.url, store: STORE, policies }), startSidecar({ upstream: backend.url, store: STORE, policies })]);
    try {
      const server = await createKeyWith(STORE, 'server');
      const stepOf = async (browser: FormBrowser, link: Link): Promise<URL> => {
        const page = await browser.get(c.proxyPort, pagePath(link));
        const r = await browser.post(c.proxyPort, pagePath(link), { csrf: csrfOf(page.text), action: 'link' });
        return new URL(r.headers.location!);
      };
      const back = (step: URL, code: string): string => {
        const u = new URL(step.searchParams.get('returnTo')!);
        u.searchParams.set('state', step.searchParams.get('state')!);
        u.searchParams.set('code', code);
        return u.pathname + u.search;
      };
      const link = await newLink(c.proxyPort, server.key, { redirectUrl: REDIRECT, referenceId: 'carol' });
      const browser = new FormBrowser();
      const step = await stepOf(browser, link);
      expect((await new FormBrowser().get(d.proxyPort, back(step, 'c1'))).status).toBe(403);
      expect((await browser.get(c.proxyPort, back(step, 'c1'))).status).toBe(403);
      expect(backend.received.filter((r) => r.url === '/step/confirm')).toEqual([]);
      // A new step; a code the backend refuses ends it on the other replica too.
      const again = await stepOf(browser, link);
      const refused = await browser.get(d.proxyPort, back(again, 'c2'));
      expect(refused.text).toContain('could not be confirmed');
      expect((await browser.get(c.proxyPort, back(again, 'c3'))).status).toBe(403);
      expect(backend.received.filter((r) => r.url === '/step/confirm')).toHaveLength(1);
    } finally {
      backend.responder = undefined;
      await c.stop();
      await d.stop();
    }
  });
});
