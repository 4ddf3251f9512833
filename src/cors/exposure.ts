import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { Principal } from '../keys/principal.ts';
import type { ExposureReport } from './browser-guard.ts';

export interface ExposureOptions {
  readonly logger: Logger;
  readonly registry: Registry;
  /** `--revoke-exposed-keys`: revoke the key at once (Texture revokes keys it sees used client-side). */
  readonly revoke: ((principal: Principal, keyHeader: string) => Promise<void>) | null;
}

/** One warning per key per minute: a page that keeps calling must not flood the log (the access log has every request). */
const WARN_EVERY_MS = 60_000;
const WARNED_MAX = 1000;

/**
 * What happens when a secret key is seen in a browser: the request is refused
 * (KEY_EXPOSED, by the guard), a warning names the key id (never the key), a counter
 * goes up, and with `--revoke-exposed-keys` the key is revoked in the store, so every
 * replica refuses it within the revocation bound and this one at once.
 */
export function exposureReport(options: ExposureOptions): ExposureReport {
  const exposed = new Counter({
    name: 'keygate_keys_exposed_total',
    help: 'Requests refused because a secret key (server, operator, access-token) was sent from a browser',
    labelNames: ['type'],
    registers: [options.registry],
  });
  const warned = new Map<string, number>();
  const revoking = new Set<string>();
  return (principal, keyHeader, signal) => {
    exposed.labels(principal.type).inc();
    const now = Date.now();
    const last = warned.get(principal.id);
    if (last === undefined || now - last >= WARN_EVERY_MS) {
      if (warned.size >= WARNED_MAX) warned.clear();
      warned.set(principal.id, now);
      options.logger.warn({ keyId: principal.id, keyType: principal.type, signal, revoke: options.revoke !== null }, 'a secret key was used from a browser: refused (KEY_EXPOSED)');
    }
    const revoke = options.revoke;
    if (revoke === null || revoking.has(principal.id)) return;
    revoking.add(principal.id);
    revoke(principal, keyHeader).then(
      () => options.logger.warn({ keyId: principal.id, keyType: principal.type }, 'revoked a secret key used from a browser (--revoke-exposed-keys)'),
      (err: unknown) => {
        revoking.delete(principal.id);
        options.logger.error({ keyId: principal.id, err: String(err) }, 'could not revoke a secret key used from a browser');
      },
    );
  };
}
