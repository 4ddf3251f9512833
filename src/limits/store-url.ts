/** The URL as an error may show it: a password never appears (the message reaches logs and terminals). */
function shown(raw: string, url: URL | null): string {
  if (url === null || url.password === '') return raw.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
  const copy = new URL(url.href);
  copy.password = '***';
  return copy.href;
}

/** `--rate-limit-store`: a Redis URL (`redis://` or, with TLS, `rediss://`), refused at start when it is anything else. */
export function parseRateLimitStore(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`"${shown(raw, null)}" is not a URL (expected redis://HOST:PORT[/DB])`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new Error(`"${shown(raw, url)}" must be a redis:// or rediss:// URL`);
  if (url.hostname === '') throw new Error(`"${shown(raw, url)}" has no host`);
  if (url.pathname !== '' && url.pathname !== '/' && !/^\/\d+$/.test(url.pathname)) throw new Error(`"${shown(raw, url)}": the path must be a database number (/0)`);
  return raw;
}
