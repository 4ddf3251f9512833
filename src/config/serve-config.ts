import { DEFAULT_KEY_CACHE, type KeyCacheOptions } from '../keys/key-cache.ts';
import { ADMISSION_CLASSES, type AdmissionClass, type AdmissionOptions, defaultShares, type Share, sharesProblem } from '../pipeline/admission.ts';
import { DEFAULT_UPSTREAM, type UpstreamOptions } from '../pipeline/forwarding/upstream.ts';
import type { SERVE } from './commands.ts';
import { ConfigError } from './config-error.ts';
import type { ConnectionDeadlines } from './deadlines.ts';
import type { Values } from './option.ts';

export type ServeValues = Values<typeof SERVE.options>;

/** Body memory per key type, in bodies of --max-body: what Keygate may hold while it reads bodies before dispatch. */
const BODY_MEMORY_BODIES = 32;

/** `keygate serve`'s options, resolved (see commands.ts), plus the groups the server hands to its parts. */
export interface ServeConfig extends ServeValues {
  readonly publicUrl: string;
  readonly upstreamOptions: UpstreamOptions;
  readonly keyCache: KeyCacheOptions;
  /** The hops (`address/prefix`) whose forwarding headers and request id are kept. */
  readonly trustProxy: readonly string[];
  /** Backend pool shares per key type, queue bounds, body memory per key type. */
  readonly admission: AdmissionOptions;
  readonly deadlines: ConnectionDeadlines;
}

/** --upstream-share: the classes named replace their defaults (which scale with --upstream-connections); the rest keep theirs. */
function shares(values: ServeValues): Record<AdmissionClass, Share> {
  const out = defaultShares(values.upstreamConnections);
  for (const s of values.upstreamShares ?? []) {
    if (!(ADMISSION_CLASSES as readonly string[]).includes(s.name)) {
      throw new ConfigError('--upstream-share', `--upstream-share: "${s.name}" is not one of ${ADMISSION_CLASSES.join(', ')}`);
    }
    out[s.name as AdmissionClass] = { reserve: s.reserve, max: s.max };
  }
  const problem = sharesProblem(values.upstreamConnections, out);
  if (problem !== undefined) throw new ConfigError('--upstream-share', `--upstream-share: ${problem} (--upstream-connections ${values.upstreamConnections})`);
  return out;
}

export function serveConfig(values: ServeValues): ServeConfig {
  const { host, port } = values.listen;
  const connections = values.upstreamConnections;
  return Object.freeze({
    ...values,
    publicUrl: values.publicUrl ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    upstreamOptions: { ...DEFAULT_UPSTREAM, headersTimeoutMs: values.upstreamTimeoutMs, bodyTimeoutMs: values.upstreamBodyTimeoutMs, connections },
    keyCache: { ...DEFAULT_KEY_CACHE, positiveTtlMs: values.keyCacheTtlMs },
    trustProxy: Object.freeze(values.trustProxyRanges.flat()),
    admission: {
      connections,
      shares: shares(values),
      queueLength: values.upstreamQueue,
      queueTimeoutMs: values.upstreamQueueTimeoutMs,
      bodyBytes: BODY_MEMORY_BODIES * values.maxBodyBytes,
    },
    deadlines: { firstByteMs: values.firstByteTimeoutMs, headersMs: values.headersTimeoutMs },
  });
}
