import { describe, expect, it } from 'vitest';
import { buildUpstreamHeaders, mutateQuery, normaliseParamName } from '../../src/pipeline/mutate.ts';
import type { Principal } from '../../src/keys/principal.ts';

const alice: Principal = { id: 'key_a', type: 'scoped', referenceId: 'alice', name: null, roles: [], conditions: {}, expiresAtMs: Infinity };
const filter = [{ attribute: 'referenceId', values: ['alice'] }];

describe('query mutation', () => {
  it.each(['referenceId', 'REFERENCEID', '%72eferenceId', 'referenceId[]', 'referenceId%5B%5D', 'referenceId[x]', ' referenceId', 'reference%49d', 'referenceId.0'])('%s normalises to referenceid', (n) => {
    expect(normaliseParamName(n)).toBe('referenceid');
  });

  it('sets the filter once after removing every variant, keeping other parameters as sent', () => {
    expect(mutateQuery('a=1&referenceId=bob&ReferenceId[]=x;b=%20&referenceid=c', filter)).toBe('a=1&b=%20&referenceId=alice');
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

  it('refuses an undecodable parameter name', () => {
    expect(() => mutateQuery('%zz=1', filter)).toThrow(/decode/);
  });
});

describe('upstream headers', () => {
  it('drops the key, hop-by-hop, override and client identity headers; adds Keygate’s', () => {
    const { headers, hasBody } = buildUpstreamHeaders({
      rawHeaders: ['Texture-Api-Key', 'scoped_x', 'Connection', 'x-secret, keep-alive', 'X-Secret', '1', 'X-HTTP-Method-Override', 'DELETE', 'X-Keygate-Key-Type', 'server', 'Accept', 'application/json', 'Host', 'sidecar:8080', 'X-Forwarded-For', '10.0.0.1'],
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

  it('leaves out the client\'s framing of a body Keygate reads (the plan adds its exact length)', () => {
    const { headers, hasBody } = buildUpstreamHeaders({ rawHeaders: ['Transfer-Encoding', 'chunked', 'Content-Length', '12', 'Content-Type', 'application/json'], principal: alice, requestId: 'r', remoteAddress: undefined, readsBody: true });
    expect(hasBody).toBe(true);
    expect(headers).not.toContain('content-length');
    expect(headers).not.toContain('transfer-encoding');
  });
});
