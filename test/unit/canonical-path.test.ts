import { describe, expect, it } from 'vitest';
import { KeygateError } from '../../src/errors/keygate-error.ts';
import { canonicalize } from '../../src/pipeline/canonical-path.ts';

describe('canonicalize', () => {
  it.each([
    ['/v1/devices', '/v1/devices', ['v1', 'devices'], ''],
    ['/v1/devices?referenceId=a', '/v1/devices', ['v1', 'devices'], 'referenceId=a'],
    ['/v1/%64evices', '/v1/devices', ['v1', 'devices'], ''],
    // the first segment rebuilt, and plain segments after a rebuilt one
    ['/%761/devices', '/v1/devices', ['v1', 'devices'], ''],
    ['/v1/%64evices/abc/d%65f?x=1', '/v1/devices/abc/def', ['v1', 'devices', 'abc', 'def'], 'x=1'],
    ['/v1/devices/a%20b', '/v1/devices/a%20b', ['v1', 'devices', 'a b'], ''],
    ['/v1/devices/caf%C3%A9', '/v1/devices/caf%C3%A9', ['v1', 'devices', 'café'], ''],
    ['/v1/devices/a:b@c', '/v1/devices/a:b@c', ['v1', 'devices', 'a:b@c'], ''],
    ['/v1/devices/%7Bx%7D', '/v1/devices/%7Bx%7D', ['v1', 'devices', '{x}'], ''],
    ['/', '/', [], ''],
  ])('%s -> %s', (url, path, segments, query) => {
    expect(canonicalize(url)).toEqual({ path, segments, query });
  });

  it.each([
    'v1/devices',
    'http://h/v1/devices',
    '*',
    '//v1',
    '/v1//devices',
    '/v1/devices/',
    '/v1/./devices',
    '/v1/../devices',
    '/v1/%2e%2E/devices',
    '/v1/a%2Fb',
    '/v1/a%5cb',
    '/v1/a\\b',
    '/v1/a%00',
    '/v1/a%0a',
    '/v1/a;b',
    '/v1/a%3bb',
    '/v1/%',
    '/v1/%G1',
    '/v1/%ED%A0%80',
    '/v1/a#frag',
  ])('refuses %j with INVALID_PATH', (url) => {
    expect(() => canonicalize(url)).toThrow(KeygateError);
    try {
      canonicalize(url);
    } catch (err) {
      expect((err as KeygateError).code).toBe('INVALID_PATH');
      expect((err as KeygateError).status).toBe(400);
    }
  });

  it('is idempotent: the canonical form canonicalizes to itself', () => {
    for (const url of ['/v1/%64evices/x%20y', '/v1/devices/caf%C3%A9', '/v1/a$b&c+d']) {
      const once = canonicalize(url).path;
      expect(canonicalize(once).path).toBe(once);
    }
  });
});
