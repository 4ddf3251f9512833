import { describe, expect, it } from 'vitest';
import { type Principal, testPrincipal } from '../../src/keys/principal.ts';
import { buildUpstreamHeaders, mutateQuery, normaliseParamName, paramKey, responseHeaders } from '../../src/pipeline/mutate.ts';

const alice: Principal = testPrincipal({ id: 'key_a', type: 'scoped', referenceId: 'alice' });
const filter = [{ attribute: 'referenceId', values: ['alice'] }];

describe('query mutation', () => {
  it.each(['referenceId', 'REFERENCEID', '%72eferenceId', 'referenceId[]', 'referenceId%5B%5D', 'referenceId[x]', ' referenceId', 'reference%49d', 'referenceId.0'])(
    '%s normalises to referenceid',
    (n) => {
      expect(normaliseParamName(n)).toBe('referenceid');
    },
  );

  it('sets the filter once after removing every variant, keeping other parameters as sent', () => {
    expect(mutateQuery('a=1&referenceId=bob&ReferenceId[]=x;b=%20&referenceid=c', filter)).toBe('referenceId=alice&a=1&b=%20');
    expect(mutateQuery('', filter)).toBe('referenceId=alice');
  });

  it('joins any-of values with commas and encodes them', () => {
    expect(mutateQuery('', [{ attribute: 'factoryId', values: ['f 1', 'f&2'] }])).toBe('factoryId=f%201,f%262');
  });

  it('removes _method for every key, and leaves an untouched query byte-identical', () => {
    expect(mutateQuery('x=1&_method=DELETE', null)).toBe('x=1');
    expect(mutateQuery('x=1&%5Fmethod=DELETE', null)).toBe('x=1');
    expect(mutateQuery('x=%41&y=b+c', null)).toBe('x=%41&y=b+c');
  });

  it.each([
    'filter[referenceId]=bob',
    'filters[referenceId][$eq]=bob',
    'filter%5BreferenceId%5D=bob',
    'referenceId_in=bob',
    'referenceId__eq=bob',
    'reference_id__in=bob',
    'referenceId!=alice',
    'where=%7B%22referenceId%22%3A%22bob%22%7D',
    'filter={"where":{"referenceId":"bob"}}',
    "$filter=referenceId+eq+'bob'",
    'q=ReferenceId:bob',
  ])('drops %s: a filter some framework applies beside the injected one', (q) => {
    expect(mutateQuery(`page=2&${q}`, filter)).toBe('referenceId=alice&page=2');
  });

  it('refuses an undecodable parameter name', () => {
    expect(() => mutateQuery('%zz=1', filter)).toThrow(/decode/);
  });
});

describe('upstream headers', () => {
  it('drops the key, hop-by-hop, override and client identity headers; adds Keygate’s', () => {
    const { headers, hasBody } = buildUpstreamHeaders({
      rawHeaders: [
        'Texture-Api-Key',
        'scoped_x',
        'Connection',
        'x-secret, keep-alive',
        'X-Secret',
        '1',
        'X-HTTP-Method-Override',
        'DELETE',
        'X-Keygate-Key-Type',
        'server',
        'Accept',
        'application/json',
        'Host',
        'sidecar:8080',
        'X-Forwarded-For',
        '10.0.0.1',
      ],
      principal: alice,
      requestId: 'r1',
      remoteAddress: '127.0.0.1',
    });
    const map = new Map<string, string[]>();
    for (let i = 0; i < headers.length; i += 2) map.set(headers[i]!, [...(map.get(headers[i]!) ?? []), headers[i + 1]!]);
    expect([...map.keys()].sort()).toEqual(['accept', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-keygate-key-id', 'x-keygate-key-type', 'x-keygate-reference-id', 'x-request-id']);
    expect(map.get('x-keygate-key-type')).toEqual(['scoped']);
    // The client's X-Forwarded-For is replaced by what Keygate saw (the hop is not trusted).
    expect(map.get('x-forwarded-for')).toEqual(['127.0.0.1']);
    expect(map.get('x-forwarded-host')).toEqual(['sidecar:8080']);
    expect(hasBody).toBe(false);
  });

  it("leaves out the client's framing of a body Keygate reads (the plan adds its exact length)", () => {
    const { headers, hasBody } = buildUpstreamHeaders({
      rawHeaders: ['Transfer-Encoding', 'chunked', 'Content-Length', '12', 'Content-Type', 'application/json'],
      principal: alice,
      requestId: 'r',
      remoteAddress: undefined,
      readsBody: true,
    });
    expect(hasBody).toBe(true);
    expect(headers).not.toContain('content-length');
    expect(headers).not.toContain('transfer-encoding');
  });
});

describe('one meaning: request headers', () => {
  const build = (rawHeaders: string[], extra: Partial<Parameters<typeof buildUpstreamHeaders>[0]> = {}) =>
    buildUpstreamHeaders({ rawHeaders, principal: alice, requestId: 'r1', remoteAddress: '127.0.0.1', ...extra });
  const names = (h: string[]) => h.filter((_, i) => i % 2 === 0);
  const code = (f: () => unknown): string | undefined => {
    try {
      f();
      return undefined;
    } catch (err) {
      return (err as { code?: string }).code;
    }
  };

  it.each([
    'X-Original-URL',
    'X-Rewrite-URL',
    'X-Override-URL',
    'X-Original-Method',
    'X-HTTP-Method',
    'X-HTTP-Method-Override',
    'X-Method-Override',
    'X-Forwarded-Path',
    'X-Forwarded-Prefix',
    'X-Forwarded-Uri',
    'X-Forwarded-Url',
    'X-Envoy-Original-Path',
    'X-Middleware-Rewrite',
    'X-Script-Name',
    'X_Original_URL',
    'x_http_method_override',
    'X-Original-Host',
  ])('drops the rewrite header %s', (name) => {
    expect(names(build([name, '/v1/api-keys', 'Accept', '*/*']).headers)).not.toContain(name.toLowerCase());
  });

  it('keeps ordinary headers, underscore spellings of ordinary ones too', () => {
    expect(names(build(['Accept', '*/*', 'X_Custom', '1', 'Authorization', 'Bearer x']).headers)).toEqual(expect.arrayContaining(['accept', 'x_custom', 'authorization']));
  });

  it.each(['Content-Type', 'content-length', 'Host', 'x-keygate-key-id', 'Texture-Api-Key', 'X-Forwarded-For', 'forwarded', 'X-Real-IP', 'x-request-id', 'Transfer-Encoding'])(
    'refuses Connection naming %s',
    (name) => {
      expect(code(() => build(['Connection', `keep-alive, ${name}`]))).toBe('INVALID_CONNECTION_HEADER');
    },
  );

  it('drops the other headers a Connection header names', () => {
    expect(names(build(['Connection', 'X-Hop, upgrade', 'X-Hop', '1', 'X-Stay', '2']).headers)).not.toContain('x-hop');
  });

  it.each([
    ['Content-Type', 'application/json'],
    ['content-encoding', 'identity'],
    ['Host', 'a'],
    ['Content-Length', '2'],
  ])('refuses %s given twice', (name, value) => {
    expect(code(() => build([name, value, name.toUpperCase(), value]))).toBe('DUPLICATE_HEADER');
  });

  it('drops conditional and range headers when the answer is checked, keeps them otherwise', () => {
    const raw = ['If-None-Match', '"x"', 'Range', 'bytes=0-1', 'If-Modified-Since', 'x'];
    expect(names(build(raw, { checked: true }).headers)).not.toEqual(expect.arrayContaining(['if-none-match']));
    expect(names(build(raw, { checked: true }).headers)).not.toContain('range');
    expect(names(build(raw).headers)).toEqual(expect.arrayContaining(['if-none-match', 'range', 'if-modified-since']));
  });

  it('replaces forwarding headers with what Keygate saw, unless the hop is trusted', () => {
    const raw = [
      'Host',
      'kg:8080',
      'X-Forwarded-For',
      '10.6.6.6',
      'X-Forwarded-Proto',
      'https',
      'X-Real-IP',
      '10.6.6.6',
      'Forwarded',
      'for=10.6.6.6',
      'X-Forwarded-Port',
      '443',
      'X-Request-Id',
      'ingress-1',
    ];
    const untrusted = new Map<string, string>();
    const h = build(raw).headers;
    for (let i = 0; i < h.length; i += 2) untrusted.set(h[i]!, h[i + 1]!);
    expect(Object.fromEntries(untrusted)).toMatchObject({
      'x-forwarded-for': '127.0.0.1',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'kg:8080',
      'x-real-ip': '127.0.0.1',
      forwarded: 'for="127.0.0.1";host="kg:8080";proto=http',
      'x-request-id': 'r1',
    });
    expect(untrusted.has('x-forwarded-port')).toBe(false);
    const trusted = new Map<string, string>();
    const t = build(raw, { trustedHop: true }).headers;
    for (let i = 0; i < t.length; i += 2) trusted.set(t[i]!, t[i + 1]!);
    expect(Object.fromEntries(trusted)).toMatchObject({
      'x-forwarded-for': '10.6.6.6, 127.0.0.1',
      'x-forwarded-proto': 'https',
      'x-real-ip': '10.6.6.6',
      forwarded: 'for=10.6.6.6, for="127.0.0.1"',
      'x-forwarded-port': '443',
      'x-request-id': 'ingress-1',
    });
  });

  it('keeps Content-Length: 0 of a bodiless request whose body Keygate would read', () => {
    const { headers, hasBody } = build(['Content-Length', '0'], { readsBody: true });
    expect(hasBody).toBe(false);
    expect(headers[headers.indexOf('content-length') + 1]).toBe('0');
  });
});

describe('one meaning: response headers and query', () => {
  it('does not relay what the backend names in its Connection header', () => {
    const out = responseHeaders({ connection: 'keep-alive, X-Internal', 'x-internal': 'secret', 'x-public': '1' }, 'r');
    expect(out).not.toContain('x-internal');
    expect(out).toContain('x-public');
  });

  it('refuses names outside ASCII where the rules say so, and compares names without - and _', () => {
    expect(() => mutateQuery('referenc%C4%B1d=bob', filter, { asciiOnly: true })).toThrow(expect.objectContaining({ code: 'INVALID_QUERY', detail: expect.stringMatching(/outside ASCII/) }));
    expect(mutateQuery('referenc%C4%B1d=x', null)).toBe('referenc%C4%B1d=x');
    expect(mutateQuery('reference_id=bob&Reference-Id=bob&a=1', filter, { asciiOnly: true })).toBe('referenceId=alice&a=1');
    expect(paramKey('device_id')).toBe('deviceid');
  });

  it.each(['device[id]=x', 'device.id=x', 'filter[id]=x', 'device%5Bid%5D=x', 'data[device_id]=x'])('refuses %s: a nested name naming the proven id (Rails, Laravel)', (q) => {
    const names = new Set(['id', 'deviceid']);
    expect(() => mutateQuery(`limit=5&${q}`, null, { refuse: names }), q).toThrow(expect.objectContaining({ code: 'RESOURCE_ID_OVERRIDE' }));
    expect(mutateQuery(`limit=5&${q}`, null, { drop: names }), q).toBe('limit=5');
    expect(mutateQuery('limit=5&deviceIds=x&identity=y', null, { refuse: names })).toBe('limit=5&deviceIds=x&identity=y');
  });

  it('refuses a parameter naming the proven id, drops one naming the body id', () => {
    const names = new Set(['id', 'deviceid']);
    for (const q of ['x=1&ID=dev-b', 'deviceId=dev-b', 'device_id=dev-b', 'DEVICE-ID=dev-b', 'DeviceID[]=dev-b', 'devic%65Id=dev-b'])
      expect(() => mutateQuery(q, null, { refuse: names }), q).toThrow(expect.objectContaining({ code: 'RESOURCE_ID_OVERRIDE' }));
    expect(mutateQuery('limit=5&devices=x', null, { refuse: names })).toBe('limit=5&devices=x');
    expect(mutateQuery('x=1&device_id=dev-b&id=3', null, { drop: names })).toBe('x=1');
  });

  it('never builds a filter from a value holding its separator', () => {
    expect(() => mutateQuery('', [{ attribute: 'referenceId', values: ['ref-carol,ref-bob'] }])).toThrow(expect.objectContaining({ code: 'RESOURCE_NOT_ALLOWED' }));
  });
});
