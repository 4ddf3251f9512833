import { describe, expect, it } from 'vitest';
import { KeyInputError, mintKey } from '../../src/keys/mint-key.ts';

function refused(input: Parameters<typeof mintKey>[0]): KeyInputError {
  try {
    mintKey(input);
  } catch (err) {
    if (err instanceof KeyInputError) return err;
    throw err;
  }
  throw new Error('accepted');
}

describe('mintKey: key record v2', () => {
  it('records the prefix of the secret, the creator and both times; never the secret', () => {
    const { record, key } = mintKey({ type: 'connect', name: 'web', allowedOrigins: ['https://App.example.com'], allowedRedirects: ['https://app.example.com/cb'], allowReferenceId: true });
    expect(record.keyPrefix).toBe(key.slice(0, 8));
    expect(record.keyPrefix).toMatch(/^api_[0-9A-Za-z]{4}$/);
    expect(record).toMatchObject({
      createdBy: 'cli',
      linkId: null,
      description: null,
      allowedOrigins: ['https://app.example.com'],
      allowedRedirects: ['https://app.example.com/cb'],
      allowReferenceId: true,
      lastUsedAt: null,
    });
    expect(record.updatedAt).toBe(record.createdAt);
    expect(JSON.stringify(record)).not.toContain(key.slice(8));
    expect(mintKey({ type: 'scoped', referenceId: 'alice' }).record.keyPrefix).toMatch(/^scoped_[0-9A-Za-z]$/);
  });

  it('takes the creator and link of a key minted by a Connect link', () => {
    const { record } = mintKey({ type: 'scoped', referenceId: 'alice', createdBy: 'link:lnk_1', linkId: 'lnk_1', allowedOrigins: ['https://app.example.com'] });
    expect(record).toMatchObject({ createdBy: 'link:lnk_1', linkId: 'lnk_1' });
    expect(refused({ type: 'server', createdBy: 'root; drop' }).field).toBe('createdBy');
  });

  it('allows origins on public keys only, redirects on all but scoped keys, allowReferenceId on connect keys only', () => {
    expect(refused({ type: 'server', allowedOrigins: ['https://a.example'] }).field).toBe('allowedOrigins');
    expect(refused({ type: 'access-token', allowedOrigins: ['https://a.example'] }).field).toBe('allowedOrigins');
    expect(refused({ type: 'scoped', referenceId: 'a', allowedRedirects: ['https://a.example/cb'] }).field).toBe('allowedRedirects');
    expect(refused({ type: 'server', allowReferenceId: true }).field).toBe('allowReferenceId');
    expect(mintKey({ type: 'server', allowedRedirects: ['https://a.example/cb'] }).record.allowedRedirects).toEqual(['https://a.example/cb']);
    expect(refused({ type: 'connect', allowedOrigins: ['https://a.example', 'https://A.example/'] }).message).toMatch(/twice/);
    expect(refused({ type: 'connect', allowedOrigins: ['http://a.example'] }).message).toMatch(/loopback/);
  });

  it('checks names, roles, conditions and expiries field by field', () => {
    expect(refused({ type: 'server', name: 'a\nb' }).field).toBe('name');
    expect(refused({ type: 'server', name: 'x'.repeat(201) }).field).toBe('name');
    expect(refused({ type: 'access-token', roles: ['Reader'] }).field).toBe('roles');
    expect(refused({ type: 'access-token', roles: ['r', 'r'] }).field).toBe('roles');
    expect(refused({ type: 'server', roles: ['r'] }).field).toBe('roles');
    expect(refused({ type: 'access-token', conditions: { factoryId: ['a,b'] } }).field).toBe('conditions');
    expect(refused({ type: 'access-token', conditions: { factoryId: [] } }).field).toBe('conditions');
    expect(refused({ type: 'access-token', conditions: ['factoryId'] }).field).toBe('conditions');
    expect(refused({ type: 'server', expiresAt: '2020-01-01T00:00:00Z' }).field).toBe('expiresAt');
    expect(refused({ type: 'server', expiresAt: 'tomorrow' }).field).toBe('expiresAt');
    expect(refused({ type: 'scoped' }).field).toBe('referenceId');
    expect(mintKey({ type: 'access-token', roles: ['r'], conditions: { factoryId: ['f1', 'f1', 'f2'] } }).record.conditions).toEqual({ factoryId: ['f1', 'f2'] });
    expect(mintKey({ type: 'access-token', conditions: ['factoryId:f1', 'factoryId:f2'] }).record.conditions).toEqual({ factoryId: ['f1', 'f2'] });
    expect(mintKey({ type: 'server', expiresAt: '2999-01-01T01:00:00+01:00' }).record.expiresAt).toBe('2999-01-01T00:00:00.000Z');
  });
});
