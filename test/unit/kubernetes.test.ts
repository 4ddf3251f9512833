import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { SERVE } from '../../src/config/commands.ts';
import { resolveOptions } from '../../src/config/resolve.ts';
import { ROOT } from '../helpers/sidecar.ts';

// The Kubernetes example must agree with the image (its ENV and ports) and with Keygate's
// options (names, values, the drain timeout), or it would deploy a pod that never gets ready.
const DIR = join(ROOT, 'deploy/kubernetes');
const docs = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) =>
    parseAllDocuments(readFileSync(join(DIR, f), 'utf8')).map((d) => {
      expect(d.errors, f).toEqual([]);
      return d.toJS() as any;
    }),
  );
const find = (kind: string) => docs.filter((d) => d.kind === kind);

/** The image's ENV (KEYGATE_* only), read from the Dockerfile's final stage. */
function imageEnv(): Record<string, string> {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const env: Record<string, string> = {};
  for (const m of finalStage.matchAll(/\b(KEYGATE_[A-Z_]+)=(\S+)/g)) env[m[1]!] = m[2]!;
  return env;
}

const [deployment] = find('Deployment');
const pod = deployment.spec.template.spec;
const keygate = pod.containers.find((c: any) => c.name === 'keygate');
const backend = pod.containers.find((c: any) => c.name !== 'keygate');
const port = (container: any, name: string): number => container.ports.find((p: any) => p.name === name)?.containerPort;
const envOf = (container: any): Record<string, any> => Object.fromEntries(container.env.map((e: any) => [e.name, e]));
const preStopSeconds = (container: any): number => {
  const command = container.lifecycle?.preStop?.exec?.command ?? [];
  return command[0] === 'sleep' ? Number(command[1]) : 0;
};

describe('deploy/kubernetes', () => {
  it('is one Deployment of Keygate beside a backend, a Service, a PodDisruptionBudget, a store Secret', () => {
    expect(find('Deployment')).toHaveLength(1);
    expect(pod.containers.map((c: any) => c.name)).toEqual(['keygate', 'backend']);
    expect(find('Service')).toHaveLength(1);
    expect(find('PodDisruptionBudget')).toHaveLength(1);
    expect(find('Secret')).toHaveLength(1);
  });

  it('names only options Keygate has, with values it accepts (the image ENV beneath)', () => {
    const variables = new Set(Object.values(SERVE.options).map((o) => o.env));
    const env = envOf(keygate);
    for (const name of Object.keys(env)) expect(variables.has(name), name).toBe(true);
    const literal = Object.fromEntries(Object.entries(env).map(([k, e]) => [k, e.value ?? 'postgres://from-a-secret/db']));
    expect(() => resolveOptions(SERVE.options, {}, { ...imageEnv(), ...literal })).not.toThrow();
    expect(keygate.args).toEqual(['serve']);
  });

  it('container ports are the listeners the image configures, and the ops listener is reachable by the kubelet', () => {
    const image = { ...imageEnv(), ...Object.fromEntries(Object.entries(envOf(keygate)).map(([k, e]) => [k, e.value])) };
    const values = resolveOptions(SERVE.options, {}, { ...image, KEYGATE_STORE: 'postgres://x/db' });
    expect(port(keygate, 'http')).toBe(values.listen.port);
    expect(port(keygate, 'ops')).toBe(values.opsListen.port);
    expect(values.opsListen.host).toBe('0.0.0.0');
    expect(Number(deployment.spec.template.metadata.annotations['prometheus.io/port'])).toBe(values.opsListen.port);
  });

  it('Keygate forwards to the backend container on the pod loopback', () => {
    const upstream = new URL(envOf(keygate).KEYGATE_UPSTREAM.value);
    expect(upstream.hostname).toBe('127.0.0.1');
    expect(Number(upstream.port)).toBe(port(backend, 'backend'));
  });

  it('probes: /healthz for liveness and /readyz for readiness, on the ops port', () => {
    expect(keygate.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'ops' });
    expect(keygate.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'ops' });
  });

  it('the grace period outlasts the preStop pause and the drain, and the backend outlives the drain', () => {
    const drainMs = Number(envOf(keygate).KEYGATE_DRAIN_TIMEOUT?.value ?? SERVE.options.drainTimeoutMs.default);
    const keygateDone = preStopSeconds(keygate) * 1000 + drainMs;
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(keygateDone);
    expect(preStopSeconds(backend) * 1000).toBeGreaterThanOrEqual(keygateDone);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(preStopSeconds(backend));
  });

  it('policies come from a ConfigMap mounted as a directory at the policies path (no subPath: the ..data swap reaches it)', () => {
    const mount = keygate.volumeMounts.find((m: any) => m.name === 'policies');
    expect(mount.mountPath).toBe(imageEnv().KEYGATE_POLICIES);
    expect(mount.subPath).toBeUndefined();
    expect(pod.volumes.find((v: any) => v.name === 'policies').configMap.name).toBe('keygate-policies');
  });

  it('the store URL comes from the Secret, under the key the example creates', () => {
    const ref = envOf(keygate).KEYGATE_STORE.valueFrom.secretKeyRef;
    const [secret] = find('Secret');
    expect(secret.metadata.name).toBe(ref.name);
    expect(() => resolveOptions(SERVE.options, {}, { KEYGATE_UPSTREAM: 'http://x', KEYGATE_STORE: secret.stringData[ref.key] })).not.toThrow();
  });

  it('resources are requested for every container; the Service and the budget select the pods', () => {
    for (const c of pod.containers) expect(c.resources?.requests?.cpu && c.resources?.requests?.memory, c.name).toBeTruthy();
    const labels = deployment.spec.template.metadata.labels;
    expect(deployment.spec.selector.matchLabels).toEqual(labels);
    const [service] = find('Service');
    expect(service.spec.selector).toEqual(labels);
    expect(service.spec.ports.map((p: any) => p.targetPort)).toEqual(['http']);
    const [pdb] = find('PodDisruptionBudget');
    expect(pdb.spec.selector.matchLabels).toEqual(labels);
    expect(pdb.spec.minAvailable).toBeLessThan(deployment.spec.replicas);
  });
});
