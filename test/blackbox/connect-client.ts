/**
 * Black-box helpers for the Connect flow and browsers: keys with origins and redirects
 * (through the CLI), and a minimal browser (a cookie jar, form posts, no redirects
 * followed) that walks the hosted pages over real HTTP. Nothing here imports from src/.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { BIN, type KeyInfo, type Res, ROOT, send } from './harness.ts';

const execFileP = promisify(execFile);

export async function createKeyWith(store: string, type: string, args: string[] = []): Promise<KeyInfo> {
  const { stdout } = await execFileP(process.execPath, [BIN, 'keys', 'create', '--type', type, '--store', store, '--json', ...args], { cwd: ROOT });
  const line = stdout
    .trim()
    .split('\n')
    .find((l) => l.trim().startsWith('{'));
  if (!line) throw new Error(`keys create printed no JSON: ${stdout}`);
  return JSON.parse(line) as KeyInfo;
}

export interface Link {
  id: string;
  linkToken: string;
  linkUrl: string;
  referenceId: string;
  expiresAt: string;
}

export async function createLink(port: number, key: string, body: unknown, headers: Record<string, string> = {}): Promise<Res> {
  return send(port, { method: 'POST', path: '/v1/connections', headers: { 'texture-api-key': key, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

export async function newLink(port: number, key: string, body: unknown): Promise<Link> {
  const r = await createLink(port, key, body);
  if (r.status !== 201) throw new Error(`link not created: ${r.status} ${r.text}`);
  return r.json as Link;
}

/** A browser without a page: one cookie jar, forms posted by hand, redirects returned, not followed. */
export class FormBrowser {
  readonly cookies = new Map<string, string>();

  #cookieHeader(): Record<string, string> {
    return this.cookies.size === 0 ? {} : { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
  }

  #remember(r: Res): void {
    const set = r.headers['set-cookie'] ?? [];
    for (const c of set) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      this.cookies.set(pair!.slice(0, eq), pair!.slice(eq + 1));
    }
  }

  async get(port: number, path: string): Promise<Res> {
    const r = await send(port, { path, headers: this.#cookieHeader() });
    this.#remember(r);
    return r;
  }

  async post(port: number, path: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<Res> {
    const r = await send(port, {
      method: 'POST',
      path,
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...this.#cookieHeader(), ...headers },
      body: new URLSearchParams(fields).toString(),
    });
    this.#remember(r);
    return r;
  }
}

/** The path of a link URL (the hosted page) on the sidecar. */
export function pagePath(link: Link): string {
  return new URL(link.linkUrl).pathname;
}

export function csrfOf(html: string): string {
  const m = /name="csrf" value="([^"]+)"/.exec(html);
  if (m === null) throw new Error(`no CSRF field in:\n${html}`);
  return m[1]!;
}

/** Opens the link's page in `browser` and allows it; the 303 answer. */
export async function finishLink(port: number, link: Link, browser = new FormBrowser()): Promise<Res> {
  const page = await browser.get(port, pagePath(link));
  if (page.status !== 200) throw new Error(`hosted page: ${page.status} ${page.text}`);
  return browser.post(port, pagePath(link), { csrf: csrfOf(page.text), action: 'allow' });
}

export function scopedKeyOf(r: Res): string {
  const location = r.headers.location;
  if (r.status !== 303 || location === undefined) throw new Error(`not a redirect: ${r.status} ${r.text}`);
  const key = new URL(location).searchParams.get('texture_scoped_key');
  if (key === null) throw new Error(`no key in ${location}`);
  return key;
}
