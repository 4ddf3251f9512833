import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { ServeConfig } from '../../src/config/serve-config.ts';
import { KeyService } from '../../src/keys/key-service.ts';
import { SqliteKeyStore } from '../../src/keys/sqlite-store.ts';
import { SERVED_HANDLERS } from '../../src/policy/served.ts';
import { servedRoutes } from '../../src/server/served-routes.ts';

describe('served routes', () => {
  it('every handler name a policy may serve has a handler, and there are no others', async () => {
    const store = new SqliteKeyStore(':memory:');
    const registry = servedRoutes({ keys: new KeyService(store), config: {} as ServeConfig, logger: pino({ level: 'silent' }) });
    expect([...registry.keys()].sort()).toEqual([...SERVED_HANDLERS].sort());
    for (const [name, handler] of registry) {
      expect(['json', 'optional', 'none'], name).toContain(handler.body);
      expect(typeof handler.handle, name).toBe('function');
    }
    await store.close();
  });
});
