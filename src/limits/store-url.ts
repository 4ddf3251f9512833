/** `--rate-limit-store`: a Redis URL (`redis://` or, with TLS, `rediss://`), refused at start when it is anything else. */
export function parseRateLimitStore(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`"${raw}" is not a URL (expected redis://HOST:PORT[/DB])`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new Error(`"${raw}" must be a redis:// or rediss:// URL`);
  if (url.hostname === '') throw new Error(`"${raw}" has no host`);
  if (url.pathname !== '' && url.pathname !== '/' && !/^\/\d+$/.test(url.pathname)) throw new Error(`"${raw}": the path must be a database number (/0)`);
  return raw;
}
