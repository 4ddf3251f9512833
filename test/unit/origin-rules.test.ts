import { describe, expect, it } from 'vitest';
import { isLoopbackHost, parseOrigin, parseRedirect, redirectAllowed } from '../../src/keys/origin-rules.ts';

describe('allowed origins', () => {
  it.each([
    ['https://app.example.com', 'https://app.example.com'],
    ['https://App.Example.COM/', 'https://app.example.com'],
    ['HTTPS://app.example.com:443', 'https://app.example.com'],
    ['https://app.example.com:8443', 'https://app.example.com:8443'],
    ['http://127.0.0.1:5173', 'http://127.0.0.1:5173'],
    ['http://localhost:3000', 'http://localhost:3000'],
    ['http://dev.localhost', 'http://dev.localhost'],
    ['http://[::1]:8080', 'http://[::1]:8080'],
    ['https://bücher.example', 'https://xn--bcher-kva.example'],
  ])('%s is the origin %s', (raw, origin) => {
    expect(parseOrigin(raw)).toBe(origin);
  });

  it.each([
    ['http://app.example.com', /loopback/],
    ['https://app.example.com/path', /without a path/],
    ['https://app.example.com/?', /without a path or query/],
    ['https://app.example.com?x=1', /without a path or query/],
    ['https://app.example.com#x', /fragment/],
    ['https://*.example.com', /\*/],
    ['https://user:pw@app.example.com', /credentials/],
    ['https://@app.example.com', /credentials/],
    ['ftp://app.example.com', /http/],
    ['myapp://connected', /http/],
    ['app.example.com', /absolute URL/],
    [' https://app.example.com', /space/],
    ['https://app.example.com\\', /backslash/],
    ['', /non-empty/],
  ])('%s is refused', (raw, why) => {
    expect(() => parseOrigin(raw)).toThrow(why);
  });
});

describe('allowed redirects', () => {
  it.each([
    ['https://app.example.com/connected', 'https://app.example.com/connected'],
    ['https://APP.example.com:443/Connected', 'https://app.example.com/Connected'],
    ['https://app.example.com', 'https://app.example.com/'],
    ['http://localhost:5173/cb', 'http://localhost:5173/cb'],
    ['myapp://connected', 'myapp://connected'],
    ['MyApp://connected/done', 'myapp://connected/done'],
    ['com.example.app://oauth/cb', 'com.example.app://oauth/cb'],
  ])('%s is registered as %s', (raw, normal) => {
    expect(parseRedirect(raw)).toBe(normal);
  });

  it.each([
    ['http://app.example.com/cb', /loopback/],
    ['https://app.example.com/cb#x', /fragment/],
    ['https://app.example.com/cb?next=1', /query/],
    ['javascript://alert(1)', /cannot be a redirect/],
    ['data://text/html,x', /cannot be a redirect/],
    ['file://etc/passwd', /cannot be a redirect/],
    ['myapp:connected', /app scheme written/],
    ['https://u@app.example.com/cb', /credentials/],
    ['/relative/cb', /absolute URL/],
  ])('%s is refused', (raw, why) => {
    expect(() => parseRedirect(raw)).toThrow(why);
  });

  it('matches a request on scheme, host, port and path exactly; its own query is allowed', () => {
    const allowed = [parseRedirect('https://app.example.com/connected'), parseRedirect('myapp://connected')];
    expect(redirectAllowed(allowed, 'https://app.example.com/connected')).toBe(true);
    expect(redirectAllowed(allowed, 'https://APP.example.com:443/connected?state=1')).toBe(true);
    expect(redirectAllowed(allowed, 'myapp://connected?x=1')).toBe(true);
    for (const other of [
      'https://app.example.com/connected/',
      'https://app.example.com/Connected',
      'https://app.example.com:8443/connected',
      'http://app.example.com/connected',
      'https://app.example.com.evil.example/connected',
      'https://evil.example/connected',
      'https://app.example.com/connected#x',
      'https://x@app.example.com/connected',
      'myapp://connected/other',
      'otherapp://connected',
      'javascript://connected',
    ])
      expect(redirectAllowed(allowed, other), other).toBe(false);
  });

  it('knows loopback hosts', () => {
    for (const h of ['localhost', 'a.localhost', '127.0.0.1', '127.9.9.9', '[::1]']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['localhost.example', '128.0.0.1', '10.0.0.1', 'example.com']) expect(isLoopbackHost(h), h).toBe(false);
  });
});
