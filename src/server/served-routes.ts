import type { Logger } from 'pino';
import { adminHandlers } from '../admin/handlers.ts';
import type { ServeConfig } from '../config/serve-config.ts';
import type { ConnectRuntime } from '../connect/connect-runtime.ts';
import { connectHandlers } from '../connect/handlers.ts';
import type { KeyService } from '../keys/key-service.ts';
import type { ServedHandler } from '../pipeline/served-handler.ts';
import type { ServedRegistry } from './served-dispatch.ts';

/** What the handlers of served routes are built with, once, when serve starts. */
export interface ServedDeps {
  /** The one way to keys (audit events, change notices). */
  readonly keys: KeyService;
  readonly config: ServeConfig;
  readonly logger: Logger;
  /** The Connect flow (links, hosted pages), shared with the pages served before authentication. */
  readonly connect: ConnectRuntime;
}

/** Every handler name of src/policy/served.ts mapped to its handler (test/unit/served-routes.test.ts checks none is missing). */
export function servedRoutes(deps: ServedDeps): ServedRegistry {
  return new Map<string, ServedHandler>([...adminHandlers(deps), ...connectHandlers(deps)]);
}
