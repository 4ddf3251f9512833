import { DEFAULT_KEY_CACHE, type KeyCacheOptions } from '../keys/key-cache.ts';
import { DEFAULT_UPSTREAM, type UpstreamOptions } from '../pipeline/upstream.ts';
import { SERVE } from './commands.ts';
import type { Values } from './option.ts';

export type ServeValues = Values<typeof SERVE.options>;

/** `keygate serve`'s options, resolved (see commands.ts), plus the groups the server hands to its parts. */
export interface ServeConfig extends ServeValues {
  readonly publicUrl: string;
  readonly upstreamOptions: UpstreamOptions;
  readonly keyCache: KeyCacheOptions;
}

export function serveConfig(values: ServeValues): ServeConfig {
  const { host, port } = values.listen;
  return Object.freeze({
    ...values,
    publicUrl: values.publicUrl ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    upstreamOptions: { ...DEFAULT_UPSTREAM, headersTimeoutMs: values.upstreamTimeoutMs, bodyTimeoutMs: values.upstreamBodyTimeoutMs },
    keyCache: { ...DEFAULT_KEY_CACHE, positiveTtlMs: values.keyCacheTtlMs },
  });
}
