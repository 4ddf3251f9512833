import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEMO, SERVE } from '../config/commands.ts';
import { resolveOptions } from '../config/resolve.ts';
import { serveConfig } from '../config/serve-config.ts';
import type { HostPort } from '../config/values.ts';
import { type DemoApp, type DemoAppConfig, startDemoApp } from '../demo/app-page.ts';
import { type DemoBackend, startDemoBackend } from '../demo/backend.ts';
import { demoConnectPolicy } from '../demo/manufacturer-step.ts';
import { hashKey } from '../keys/key-format.ts';
import { mintKey } from '../keys/mint-key.ts';
import { createLoggers } from '../observability/logger.ts';
import { type RunningKeygate, startKeygate } from '../server/serve.ts';
import { parseOrHelp } from './parse-command.ts';

const DEMO_KEYS = [
  ['server', 'server', undefined],
  ['connect', 'connect', undefined],
  ['alice', 'scoped', 'alice'],
  ['bob', 'scoped', 'bob'],
] as const;

type Label = (typeof DEMO_KEYS)[number][0];

/** A listener that could not be bound, said in terms of the flag that chose it. */
function bindError(err: unknown, listens: ReadonlyArray<readonly [string, HostPort]>): unknown {
  const e = err as NodeJS.ErrnoException & { port?: number };
  if (e.code !== 'EADDRINUSE' && e.code !== 'EACCES' && e.code !== 'EADDRNOTAVAIL') return err;
  const flag = listens.find(([, hp]) => hp.port === e.port)?.[0];
  return new Error(`${e.message}${flag === undefined ? '' : `: choose another address with ${flag}`}`);
}

/**
 * `keygate demo`: the demo device backend, the sidecar in front of it and four new keys,
 * all in one process, then curl lines to try. Every listener is bound before a key is
 * minted, so a port in use ends the demo at once with nothing made; the keys live in a
 * store of the demo's own in a new temporary directory, removed when the demo stops, so
 * runs never pile keys up anywhere.
 */
export async function demoCommand(argv: readonly string[]): Promise<void> {
  const parsed = parseOrHelp(DEMO, argv);
  if (parsed === undefined) return;
  const v = parsed.values;
  const dir = mkdtempSync(join(tmpdir(), 'keygate-demo-'));
  const storeUrl = `sqlite:${join(dir, 'keys.db')}`;
  let backend: DemoBackend | undefined;
  let app: DemoApp | undefined;
  let running: RunningKeygate | undefined;
  const loggers = createLoggers({ level: v.logLevel, accessLog: v.accessLog });
  const release = async (): Promise<void> => {
    await running?.shutdown().catch(() => undefined);
    await app?.close();
    await backend?.close();
    rmSync(dir, { recursive: true, force: true });
  };
  const seeded = {} as Record<Label, { id: string; key: string }>;
  const appConfig: DemoAppConfig = { keygate: '', connectKey: '' };
  let linkUrl: string;
  try {
    backend = await startDemoBackend({ port: v.backendPort, record: false }).catch((err: unknown) => {
      throw bindError(err, [['--backend-port', { host: '127.0.0.1', port: v.backendPort }]]);
    });
    app = await startDemoApp(appConfig, v.appPort).catch((err: unknown) => {
      throw bindError(err, [['--app-port', { host: '127.0.0.1', port: v.appPort }]]);
    });
    const config = serveConfig({
      ...resolveOptions(SERVE.options, { upstream: backend.url, store: storeUrl }, {}),
      listen: v.listen,
      opsListen: v.opsListen,
      policies: v.policies ?? demoPolicies(dir, backend.url),
      logLevel: v.logLevel,
      accessLog: v.accessLog,
    });
    running = await startKeygate(config, loggers).catch((err: unknown) => {
      throw bindError(err, [
        ['--listen', v.listen],
        ['--ops-listen', v.opsListen],
      ]);
    });
    for (const [label, type, referenceId] of DEMO_KEYS) {
      // The connect key is the demo app's: its origin may call Keygate, its page is where links return.
      const browser = type === 'connect' ? { allowedOrigins: [app.origin], allowedRedirects: [app.url] } : {};
      const { record, key } = mintKey({ type, referenceId, name: `demo ${label}`, ...browser });
      await running.store.insert(record, hashKey(key));
      seeded[label] = { id: record.id, key };
    }
    await running.refreshOrigins();
    Object.assign(appConfig, { keygate: `http://127.0.0.1:${running.proxy.port}`, connectKey: seeded.connect.key });
    backend.behaviour.returnOrigin = `http://127.0.0.1:${running.proxy.port}`;
    // Not a link made here: the app takes a key back only with the state its own tab sent,
    // so the printed address starts the flow in the browser that opens it.
    linkUrl = `${app.url}?connect`;
  } catch (err) {
    await release();
    throw err;
  }
  const base = `http://127.0.0.1:${running.proxy.port}`;
  process.stderr.write(demoText(base, `http://127.0.0.1:${running.ops.port}`, backend.url, storeUrl, seeded, { app: app.url, link: linkUrl }));
  const stop = (): void => {
    release().then(() => loggers.logger.flush(() => process.exit(0)));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

/**
 * The shipped policies with the Connect flow's device step turned on: the demo backend's
 * fake manufacturer sign-in (the shipped texture.yaml has it off).
 */
function demoPolicies(dir: string, backendUrl: string): string {
  const policies = join(dir, 'policies');
  mkdirSync(policies);
  copyFileSync(fileURLToPath(new URL('../../policies/texture.yaml', import.meta.url)), join(policies, 'texture.yaml'));
  writeFileSync(join(policies, 'connect.yaml'), demoConnectPolicy(backendUrl));
  return policies;
}

function demoText(base: string, ops: string, backendUrl: string, storeUrl: string, keys: Record<Label, { id: string; key: string }>, connect: { app: string; link: string }): string {
  const h = (label: Label): string => `-H 'Texture-Api-Key: ${keys[label].key}'`;
  const json = "-H 'content-type: application/json'";
  return `
Keygate demo
  demo backend  ${backendUrl} (alice owns dev_alice_1, dev_alice_2; bob owns dev_bob_1, dev_bob_2)
  sidecar       ${base}
  ops           ${ops}/readyz  ${ops}/metrics
  key store     ${storeUrl} (new for this run, removed when the demo stops)

Four new keys (only their hashes are stored):
  server   ${keys.server.key}
  connect  ${keys.connect.key}
  alice    ${keys.alice.key}  (scoped to referenceId alice)
  bob      ${keys.bob.key}  (scoped to referenceId bob)

The Connect flow in a browser (a page on another origin, with the public connect key):
  demo app      ${connect.app}  → "Connect your devices": the hosted page, a fake manufacturer
                sign-in, then the app lists your devices with the scoped key it received
  a link        ${connect.link}
                (the same flow without the popup, started in the browser that opens it)

Try:
  # server key: everything
  curl -s ${h('server')} ${base}/v1/devices
  # connect key: only Connect links (anything else is 403)
  curl -s ${h('connect')} ${json} -d '{"redirectUrl":"${connect.app}"}' ${base}/v1/connections
  curl -s ${h('connect')} ${base}/v1/devices
  # alice's scoped key: her devices only (referenceId injected); bob's device is 403
  curl -s ${h('alice')} ${base}/v1/devices
  curl -s ${h('alice')} ${base}/v1/devices/dev_alice_1/history
  curl -s ${h('alice')} ${base}/v1/devices/dev_bob_1
  curl -s ${h('alice')} -X POST ${json} -d '{"deviceId":"dev_alice_1","input":{"heatSetpoint":21}}' ${base}/v1/commands/thermostat/set-temperature
  curl -s ${h('alice')} -X POST ${json} -d '{"deviceId":"dev_bob_1","input":{}}' ${base}/v1/commands/thermostat/set-temperature
  # bob's scoped key sees bob's devices only
  curl -s ${h('bob')} ${base}/v1/devices
  # no key, a bad key
  curl -s ${base}/v1/devices
  curl -s -H 'Texture-Api-Key: api_nope' ${base}/v1/devices
  # revoke bob's key from another terminal; the sidecar refuses it within a second (it watches the store for changes)
  npx keygate keys revoke ${keys.bob.id} --store ${storeUrl}

Ctrl-C stops the demo. Access logs follow on stdout.

`;
}
