import { type DemoBackend, startDemoBackend } from '../../src/demo/backend.ts';
import { type Sidecar, seedKeys, startSidecar, type TestKeys, tempStore } from './sidecar.ts';

export interface Fixture {
  backend: DemoBackend;
  sidecar: Sidecar;
  keys: TestKeys;
  store: string;
  /** Requests the backend received since the last call. */
  take(): DemoBackend['received'];
  close(): Promise<void>;
}

/** Demo backend on port 0 + real SQLite file with the four table keys + the sidecar process. */
export async function startFixture(opts: { args?: string[]; env?: Record<string, string>; policies?: string } = {}): Promise<Fixture> {
  const backend = await startDemoBackend();
  const store = tempStore();
  const keys = await seedKeys(store);
  const sidecar = await startSidecar({ upstream: backend.url, store, ...opts });
  return {
    backend,
    sidecar,
    keys,
    store,
    take() {
      return backend.received.splice(0);
    },
    async close() {
      await sidecar.stop('SIGKILL');
      await backend.close();
    },
  };
}
