import pino from 'pino';
import { Agent } from 'undici';
import { describe, expect, it } from 'vitest';
import type { ServeConfig } from '../../src/config/serve-config.ts';
import { ConnectRuntime } from '../../src/connect/connect-runtime.ts';
import { openLinkStore } from '../../src/connect/open-link-store.ts';
import { KeyService } from '../../src/keys/key-service.ts';
import { SqliteKeyStore } from '../../src/keys/sqlite-store.ts';
import { loadPolicy } from '../../src/policy/load.ts';
import { PolicyHolder } from '../../src/policy/policy-holder.ts';
import { SERVED_HANDLERS } from '../../src/policy/served.ts';
import { servedRoutes } from '../../src/server/served-routes.ts';
import { POLICIES } from '../helpers/sidecar.ts';

describe('served routes', () => {
  it('every handler name a policy may serve has a handler, and there are no others', async () => {
    const store = new SqliteKeyStore(':memory:');
    const keys = new KeyService(store);
    const logger = pino({ level: 'silent' });
    const connect = new ConnectRuntime({
      config: { publicUrl: 'http://127.0.0.1:8080', connectLinkTtlMs: 60_000 },
      links: await openLinkStore('sqlite::memory:'),
      keys,
      policy: new PolicyHolder(loadPolicy(POLICIES)),
      upstream: new Agent(),
      logger,
      judge: () => {},
    });
    const registry = servedRoutes({ keys, config: {} as ServeConfig, logger, connect });
    expect([...registry.keys()].sort()).toEqual([...SERVED_HANDLERS].sort());
    for (const [name, handler] of registry) {
      expect(['json', 'optional', 'none'], name).toContain(handler.body);
      expect(typeof handler.handle, name).toBe('function');
    }
    await connect.close();
    await store.close();
  });
});
