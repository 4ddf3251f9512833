import { describe, expect, it } from 'vitest';
import { parseLinkRequest } from '../../../src/connect/link-request.ts';
import { isRegistered, parseRedirect, redirectWith } from '../../../src/connect/redirect-url.ts';
import { KeygateError } from '../../../src/errors/keygate-error.ts';

function refusal(body: unknown): string {
  try {
    parseLinkRequest(body);
  } catch (err) {
    expect(err).toBeInstanceOf(KeygateError);
    expect((err as KeygateError).code).toBe('INVALID_FIELD');
    return (err as KeygateError).message;
  }
  throw new Error('accepted');
}

describe('POST /v1/connections body', () => {
  it("accepts Texture's fields and state", () => {
    const r = parseLinkRequest({
      redirectUrl: 'https://app.example.com/done?x=1',
      referenceId: 'user-1',
      clientName: 'My app',
      tags: ['boston'],
      customerInfo: { email: 'a@example.com' },
      manufacturerFilters: { thermostat: ['ecobee'] },
      state: 's1',
    });
    expect(r.redirect.match).toBe('https://app.example.com/done');
    expect(r.referenceId).toBe('user-1');
    expect(r.state).toBe('s1');
  });

  it.each([
    [[], 'the body must be a JSON object'],
    [{}, 'redirectUrl is required'],
    [{ redirectUrl: 5 }, 'redirectUrl must be a string'],
    [{ redirectUrl: '/relative' }, 'redirectUrl is not an absolute URL'],
    [{ redirectUrl: 'https://a.example/#x' }, 'redirectUrl may not have a fragment'],
    [{ redirectUrl: 'https://u:p@a.example/' }, 'redirectUrl may not carry a user name or password'],
    [{ redirectUrl: 'javascript:alert(1)' }, 'redirectUrl may not use the javascript: scheme'],
    [{ redirectUrl: 'https://a.example/', email: 'x' }, 'unknown field "email"'],
    [{ redirectUrl: 'https://a.example/', referenceId: 'a,b' }, 'referenceId must be'],
    [{ redirectUrl: 'https://a.example/', clientName: '' }, 'clientName must be 1 to 100 characters'],
    [{ redirectUrl: 'https://a.example/', clientName: 'Bank\u202e' }, 'clientName may not contain control or invisible characters'],
    [{ redirectUrl: 'https://a.example/', tags: 'x' }, 'tags must be an array of strings'],
    [{ redirectUrl: 'https://a.example/', tags: [1] }, 'tags[0] must be a string'],
    [{ redirectUrl: 'https://a.example/', customerInfo: { email: 1 } }, 'customerInfo.email must be a string'],
    [{ redirectUrl: 'https://a.example/', manufacturerFilters: ['ecobee'] }, 'manufacturerFilters must be an object'],
    [{ redirectUrl: 'https://a.example/', state: 'a'.repeat(513) }, 'state must be 1 to 512 characters'],
  ])('refuses %j naming the field', (body, message) => {
    expect(refusal(body)).toContain(message);
  });
});

describe('redirect URLs', () => {
  const target = (u: string) => {
    const t = parseRedirect(u);
    if (typeof t === 'string') throw new Error(t);
    return t;
  };

  it('match registered URLs on scheme, host, port and path exactly, never by prefix', () => {
    const registered = ['https://app.example.com/connected', 'myapp://connected'];
    expect(isRegistered(target('https://app.example.com/connected?from=x'), registered)).toBe(true);
    expect(isRegistered(target('myapp://connected'), registered)).toBe(true);
    for (const u of [
      'https://app.example.com/connected/evil',
      'https://app.example.com/connecte',
      'https://app.example.com.evil.test/connected',
      'http://app.example.com/connected',
      'https://app.example.com:8443/connected',
      'https://APP.example.com/connected/../x',
      'myapp://connected/x',
      'myapp:connected',
      'myapp:///connected',
    ]) {
      expect(isRegistered(target(u), registered), u).toBe(false);
    }
  });

  it("keep the URL's own query and replace any parameter an app could read as one of the names Keygate adds", () => {
    const t = target('https://app.example.com/cb?a=1%202&texture_scoped_key=forged&State=forged&state=forged&keep=1');
    expect(redirectWith(t, { texture_scoped_key: 'scoped_K', state: 's&1', error: null })).toBe('https://app.example.com/cb?a=1%202&keep=1&texture_scoped_key=scoped_K&state=s%261');
    // `;` splits pairs for some (Python before 3.9.2), PHP reads `.` as `_`, ASP.NET ignores case, `[]` makes a list.
    const smuggled = target('https://app.example.com/cb?a=1;texture_scoped_key=scoped_ATTACKER;b=2&texture.scoped.key=x&TEXTURE_SCOPED_KEY[]=y&%74exture_scoped_key=z&error=e');
    expect(redirectWith(smuggled, { texture_scoped_key: 'scoped_K', state: null, error: null })).toBe('https://app.example.com/cb?a=1;b=2&texture_scoped_key=scoped_K');
    // PHP's unmatched [, a NUL, - for _, camelCase, fullwidth letters, a trailing dot.
    const folded = target('https://app.example.com/cb?texture[scoped_key=A&texture_scoped_key%00=B&texture-scoped-key=C&textureScopedKey=D&%EF%BD%93tate=E&error.=F&statement=keep&x_state=keep');
    expect(redirectWith(folded, { texture_scoped_key: 'scoped_K', state: 's', error: null })).toBe('https://app.example.com/cb?statement=keep&x_state=keep&texture_scoped_key=scoped_K&state=s');
    // A bad escape does not hide a NUL before it, nor does double encoding.
    const undecodable = target('https://app.example.com/cb?error%00%FF=x&state%00%E0=y&texture_scoped_key%2500=z&keep=1');
    expect(redirectWith(undecodable, { texture_scoped_key: 'scoped_K', state: null, error: null })).toBe('https://app.example.com/cb?keep=1&texture_scoped_key=scoped_K');
    expect(redirectWith(target('myapp://connected'), { texture_scoped_key: 'k', state: null })).toBe('myapp://connected?texture_scoped_key=k');
  });

  it('give the exact origin the popup may post to (none for an app scheme)', () => {
    expect(target('https://app.example.com:8443/x').origin).toBe('https://app.example.com:8443');
    expect(target('myapp://connected').origin).toBeNull();
  });
});
