import { existsSync } from 'node:fs';
import { ConfigError } from '../config/config-error.ts';
import { loadPolicy } from '../policy/load.ts';
import { PolicyLoadError } from '../policy/policy-error.ts';
import { didYouMean } from '../policy/yaml-shape.ts';

const DEFAULT_POLICIES = './policies';

/**
 * The roles given with --role, against a policy: the management API refuses a role its
 * policy lacks (INVALID_FIELD), but the CLI runs beside no sidecar and cannot know which
 * policy the key will meet. With --policies (or KEYGATE_POLICIES) the check is strict: an
 * unknown role is refused and nothing is made. Without, the roles are checked against
 * ./policies when it loads, and a role missing there is only a warning: roles are bound
 * late (a key may name a role a later policy defines; until then it grants nothing).
 */
export function checkRoles(roles: readonly string[] | undefined, policies: string | undefined, warn: (line: string) => void): void {
  if (roles === undefined || roles.length === 0) return;
  const strict = policies !== undefined;
  const path = policies ?? DEFAULT_POLICIES;
  if (!strict && !existsSync(path)) return;
  let known: string[];
  try {
    known = [...loadPolicy(path).roles.keys()];
  } catch (err) {
    if (!(err instanceof PolicyLoadError)) throw err;
    if (strict) throw new ConfigError('--policies', `--policies: ${path} does not load, so --role cannot be checked against it:\n${err.message}`);
    return;
  }
  for (const role of roles) {
    if (known.includes(role)) continue;
    const why = `--role: the policies at ${path} have no role "${role}" (${didYouMean(role, known)}roles: ${known.join(', ')})`;
    if (strict) throw new ConfigError('--role', why);
    warn(`warning: ${why}; the key grants nothing through it until a policy defines it (give --policies PATH to check against your sidecar's policies and refuse it)\n`);
  }
}
