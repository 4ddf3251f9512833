import { startDemoBackend } from '../demo/backend.ts';
import { hashKey } from '../keys/key-format.ts';
import { openStore } from '../keys/open-store.ts';
import { createLoggers } from '../observability/logger.ts';
import { startKeygate } from '../server/serve.ts';
import { serveConfig } from '../config.ts';
import { flag, only, parseArgs } from './args.ts';
import { mintKey } from './keys.ts';

export const DEMO_STORE = 'sqlite:./data/demo.db';

/**
 * `keygate demo`: the demo device backend, fresh demo keys (server, connect, scoped for
 * alice and for bob) and the sidecar in front, all in one process, then curl lines.
 */
export async function demoCommand(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv);
  only(args, ['listen', 'ops-listen', 'store', 'policies', 'backend-port']);
  const backend = await startDemoBackend({ port: Number(flag(args, 'backend-port') ?? 0), record: false });
  const storeUrl = flag(args, 'store') ?? DEMO_STORE;
  const store = await openStore(storeUrl);
  const seeded: Record<string, string> = {};
  for (const [label, type, referenceId] of [
    ['server', 'server', undefined],
    ['connect', 'connect', undefined],
    ['alice', 'scoped', 'alice'],
    ['bob', 'scoped', 'bob'],
  ] as const) {
    const { record, key } = mintKey({ type, referenceId, name: `demo ${label}` });
    await store.insert(record, hashKey(key));
    seeded[label] = key;
  }
  await store.close();

  const config = serveConfig(
    { positionals: [], flags: new Map([['upstream', [backend.url]], ['store', [storeUrl]], ...(['listen', 'ops-listen', 'policies'] as const).flatMap((n) => (flag(args, n) === undefined ? [] : [[n, [flag(args, n)!]] as [string, string[]]]))]) },
    { ...process.env, KEYGATE_LISTEN: process.env.KEYGATE_LISTEN ?? '127.0.0.1:8080' },
  );
  const loggers = createLoggers();
  const logger = loggers.logger;
  const running = await startKeygate(config, loggers);
  const base = `http://127.0.0.1:${running.proxy.port}`;
  const h = (k: string): string => `-H 'Texture-Api-Key: ${k}'`;
  process.stderr.write(`
Keygate demo
  demo backend  ${backend.url} (alice owns dev_alice_1, dev_alice_2; bob owns dev_bob_1, dev_bob_2)
  sidecar       ${base}
  ops           http://127.0.0.1:${running.ops.port}/readyz  /metrics
  key store     ${storeUrl} (keys below are new; only their hashes are stored)

Try:
  # server key: everything
  curl -s ${h(seeded.server!)} ${base}/v1/devices
  # connect key: only Connect links (anything else is 403)
  curl -s ${h(seeded.connect!)} -X POST ${base}/v1/connections
  curl -s ${h(seeded.connect!)} ${base}/v1/devices
  # alice's scoped key: her devices only (referenceId injected), bob's device is 403
  curl -s ${h(seeded.alice!)} ${base}/v1/devices
  curl -s ${h(seeded.alice!)} ${base}/v1/devices/dev_alice_1/history
  curl -s ${h(seeded.alice!)} ${base}/v1/devices/dev_bob_1
  curl -s ${h(seeded.alice!)} -X POST -H 'content-type: application/json' -d '{"deviceId":"dev_alice_1","input":{"heatSetpoint":21}}' ${base}/v1/commands/thermostat/set-temperature
  curl -s ${h(seeded.alice!)} -X POST -H 'content-type: application/json' -d '{"deviceId":"dev_bob_1","input":{}}' ${base}/v1/commands/thermostat/set-temperature
  # no key, a bad key
  curl -s ${base}/v1/devices
  curl -s -H 'Texture-Api-Key: api_nope' ${base}/v1/devices

Ctrl-C stops the demo. Access logs follow on stdout.

`);
  const stop = (): void => {
    running.shutdown().then(() => backend.close()).then(() => logger.flush(() => process.exit(0)));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
