import { MIN_CONNECTIONS } from '../pipeline/admission.ts';
import { REQUEST_TIMEOUT_MS } from './deadlines.ts';
import { list, type Options, toggle, value } from './option.ts';
import {
  baseUrl,
  boolean,
  browserOrigin,
  cidrList,
  condition,
  connectionCap,
  duration,
  hostPort,
  httpOrigin,
  keyType,
  limit,
  oneOf,
  rateLimitStoreUrl,
  redirectUrl,
  referenceId,
  shareList,
  storeUrl,
  text,
  wholeNumber,
} from './values.ts';

/**
 * The options table of every command. Each row is the whole truth about one option (see
 * option.ts). Adding one to serve is one row here, e.g.
 *
 *   trustProxy: value({ flag: 'trust-proxy', env: 'KEYGATE_TRUST_PROXY', placeholder: 'CIDR',
 *     parse: cidrList, description: '…' }),
 *
 * after which `config.trustProxy` holds the parsed value, or undefined when the row has no
 * default and none was given (ServeConfig spreads every row),
 * `--help` shows it, and test/unit/options-readme.test.ts asks for its row in the README.
 */
export interface CommandSpec<O extends Options = Options> {
  /** As typed after `keygate`: `serve`, `keys list`. */
  readonly name: string;
  readonly summary: string;
  /** The positional arguments as help shows them, e.g. `ID`, `[PATH]`. */
  readonly args: string;
  readonly positionals: { readonly min: number; readonly max: number };
  /** Paragraphs printed under the usage line of `--help`. */
  readonly about: readonly string[];
  readonly options: O;
}

function command<const O extends Options>(spec: CommandSpec<O>): CommandSpec<O> {
  return spec;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const MS = 'MS';
const milliseconds = wholeNumber('milliseconds');

export const SERVE = command({
  name: 'serve',
  summary: 'run the sidecar in front of a backend',
  args: '',
  positionals: { min: 0, max: 0 },
  about: ['Runs Keygate in front of the backend at --upstream. Flags win over environment variables, which win over defaults.'],
  options: {
    upstream: value({ flag: 'upstream', env: 'KEYGATE_UPSTREAM', placeholder: 'URL', required: true, parse: httpOrigin, description: 'the backend origin (`http://` or `https://`, no path)' }),
    listen: value({ flag: 'listen', env: 'KEYGATE_LISTEN', placeholder: 'HOST:PORT', default: '0.0.0.0:8080', parse: hostPort, description: 'the proxy listener' }),
    opsListen: value({
      flag: 'ops-listen',
      env: 'KEYGATE_OPS_LISTEN',
      placeholder: 'HOST:PORT',
      default: '127.0.0.1:9090',
      parse: hostPort,
      description: '`GET /healthz`, `GET /readyz`, `GET /metrics`',
    }),
    policies: value({ flag: 'policies', env: 'KEYGATE_POLICIES', placeholder: 'PATH', default: './policies', parse: text, description: 'a directory of `*.yaml` policy files (or one file)' }),
    store: value({
      flag: 'store',
      env: 'KEYGATE_STORE',
      placeholder: 'URL',
      default: 'sqlite:./data/keygate.db',
      parse: storeUrl,
      description: '`sqlite:PATH` or `postgres://USER@HOST:PORT/DB[?schema=NAME&application_name=NAME]`; made when missing (a SQLite file only in a directory that exists)',
    }),
    publicUrl: value({
      flag: 'public-url',
      env: 'KEYGATE_PUBLIC_URL',
      placeholder: 'URL',
      defaultText: 'http:// + the listen address',
      parse: baseUrl,
      description:
        'used by the Connect flow: where browsers reach Keygate, under which link URLs are built; a path in it (`https://api.example.com/keygate`) is a prefix the ingress strips: the hosted pages link under it too',
    }),
    connectLinkTtlMs: value({
      flag: 'connect-link-ttl',
      env: 'KEYGATE_CONNECT_LINK_TTL',
      placeholder: 'DURATION',
      default: '30m',
      parse: duration({ max: { ms: 86_400_000, text: '24h' } }),
      description: 'used by the Connect flow: how long a Connect link lives, at most `24h`',
    }),
    rateLimitStore: value({
      flag: 'rate-limit-store',
      env: 'KEYGATE_RATE_LIMIT_STORE',
      placeholder: 'URL',
      defaultText: "this process's memory",
      parse: rateLimitStoreUrl,
      description:
        "where the policy's `rateLimits` are counted: `redis://HOST:PORT[/DB]` (or `rediss://`) to share one budget across replicas and `--workers`; while Redis cannot answer, each process counts locally (see [Rate limits](#rate-limits))",
    }),
    revokeExposedKeys: value({
      flag: 'revoke-exposed-keys',
      env: 'KEYGATE_REVOKE_EXPOSED_KEYS',
      placeholder: 'true|false',
      default: 'false',
      parse: boolean,
      description: 'revoke at once a server, operator or access-token key that is sent from a browser (it is refused with 403 `KEY_EXPOSED` either way; see [Browsers](#browsers-cors))',
    }),
    upstreamTimeoutMs: value({
      flag: 'upstream-timeout',
      env: 'KEYGATE_UPSTREAM_TIMEOUT',
      placeholder: MS,
      default: '10000',
      parse: milliseconds,
      description: "time from dispatch to the backend's response headers; past it → 504",
    }),
    upstreamBodyTimeoutMs: value({
      flag: 'upstream-body-timeout',
      env: 'KEYGATE_UPSTREAM_BODY_TIMEOUT',
      placeholder: MS,
      default: '30000',
      parse: milliseconds,
      description:
        'longest silence inside a response body, and longest a client may take none of a streamed answer; past it a checked answer → 504, a streamed one is cut off (the client sees the connection end)',
    }),
    maxBodyBytes: value({
      flag: 'max-body',
      env: 'KEYGATE_MAX_BODY',
      placeholder: 'BYTES',
      default: '1048576',
      parse: wholeNumber('bytes'),
      description: 'the largest body Keygate reads (bodies of every key that is not full access); more → 413',
    }),
    maxUpstreamBodyBytes: value({
      flag: 'max-upstream-body',
      env: 'KEYGATE_MAX_UPSTREAM_BODY',
      placeholder: 'BYTES',
      default: '16777216',
      parse: wholeNumber('bytes', { min: 1024 }),
      description: 'the largest backend answer Keygate holds to check it (the answers it must check before the client sees a byte); more → 502',
    }),
    checkedAnswerBudgetBytes: value({
      flag: 'checked-answer-budget',
      env: 'KEYGATE_CHECKED_ANSWER_BUDGET',
      placeholder: 'BYTES',
      default: '268435456',
      parse: wholeNumber('bytes', { min: 1024 }),
      description:
        'the bytes of checked answers Keygate holds at once, from their first byte from the backend until their client has them; past it the largest still arriving are aborted (503 `ANSWERS_SATURATED`; see [Flow control](#flow-control))',
    }),
    heldAnswerBudgetBytes: value({
      flag: 'held-answer-budget',
      env: 'KEYGATE_HELD_ANSWER_BUDGET',
      placeholder: 'BYTES',
      default: '268435456',
      parse: wholeNumber('bytes', { min: 1024 }),
      description: 'the bytes of checked answers, written whole, that clients may leave untaken at once; past it the connections holding the most are closed (see [Flow control](#flow-control))',
    }),
    keyCacheTtlMs: value({
      flag: 'key-cache-ttl',
      env: 'KEYGATE_KEY_CACHE_TTL',
      placeholder: MS,
      default: '2000',
      parse: wholeNumber('milliseconds', { max: 5000 }),
      description: 'how long a found key is trusted without asking the store; at most 5000 (the revocation bound)',
    }),
    drainTimeoutMs: value({
      flag: 'drain-timeout',
      env: 'KEYGATE_DRAIN_TIMEOUT',
      placeholder: MS,
      default: '10000',
      parse: milliseconds,
      description: 'how long SIGTERM waits for in-flight requests',
    }),
    watchPolicies: value({
      flag: 'watch-policies',
      env: 'KEYGATE_WATCH_POLICIES',
      placeholder: 'true|false',
      default: 'true',
      parse: boolean,
      description: 'reload policies when their files change (SIGHUP always reloads)',
    }),
    workers: value({
      flag: 'workers',
      env: 'KEYGATE_WORKERS',
      placeholder: 'N',
      default: '1',
      parse: wholeNumber('processes', { max: 64 }),
      description: 'worker processes sharing the proxy listener (node:cluster), supervised by a primary that serves the ops listener (see Workers below), at most 64',
    }),
    trustProxyRanges: list({
      flag: 'trust-proxy',
      env: 'KEYGATE_TRUST_PROXY',
      placeholder: 'CIDR',
      parse: cidrList,
      description:
        'the proxies in front of Keygate (an ingress): IPv4/IPv6 addresses or ranges, repeatable or comma-separated. A request from one keeps its `X-Forwarded-*`, `Forwarded`, client-address headers and `X-Request-Id`; from anywhere else they are replaced (see [Security](#security), class 10)',
    }),
    upstreamConnections: value({
      flag: 'upstream-connections',
      env: 'KEYGATE_UPSTREAM_CONNECTIONS',
      placeholder: 'N',
      default: '128',
      parse: wholeNumber('connections', { min: MIN_CONNECTIONS }),
      description: `the backend pool of each process; requests in flight from one process never exceed it (at least ${MIN_CONNECTIONS}). With \`--workers W\` each worker has its own pool, shares and queues: the backend may see W × N`,
    }),
    upstreamShares: value({
      flag: 'upstream-share',
      env: 'KEYGATE_UPSTREAM_SHARE',
      placeholder: 'TYPE=R:M,…',
      defaultText: 'see Flow control',
      parse: shareList,
      description:
        'per key type (and `lookup`): `R` connections reserved for it, at most `M` in all; the types named replace their defaults (see [Flow control](#flow-control)), e.g. `scoped=8:96,connect=4:16`',
    }),
    upstreamQueue: value({
      flag: 'upstream-queue',
      env: 'KEYGATE_UPSTREAM_QUEUE',
      placeholder: 'N',
      default: '1024',
      parse: wholeNumber('requests'),
      description: 'requests of one key type that wait for a backend connection; more → 503 `UPSTREAM_SATURATED` at once',
    }),
    upstreamQueueTimeoutMs: value({
      flag: 'upstream-queue-timeout',
      env: 'KEYGATE_UPSTREAM_QUEUE_TIMEOUT',
      placeholder: MS,
      default: '1000',
      parse: milliseconds,
      description: 'the longest wait for a backend connection → 503 `UPSTREAM_SATURATED`; `--upstream-timeout` counts from dispatch',
    }),
    bodyTimeoutMs: value({
      flag: 'body-timeout',
      env: 'KEYGATE_BODY_TIMEOUT',
      placeholder: MS,
      default: '5000',
      parse: wholeNumber('milliseconds', { max: REQUEST_TIMEOUT_MS }),
      description: `total time, from the request's headers, for a body Keygate reads before forwarding; past it → 408 \`BODY_TIMEOUT\` and the connection closes (at most ${REQUEST_TIMEOUT_MS})`,
    }),
    firstByteTimeoutMs: value({
      flag: 'first-byte-timeout',
      env: 'KEYGATE_FIRST_BYTE_TIMEOUT',
      placeholder: MS,
      default: '5000',
      parse: milliseconds,
      description: "a new connection that sends nothing for this long (before its first request's headers are in) is closed",
    }),
    headersTimeoutMs: value({
      flag: 'headers-timeout',
      env: 'KEYGATE_HEADERS_TIMEOUT',
      placeholder: MS,
      default: '10000',
      parse: wholeNumber('milliseconds', { max: REQUEST_TIMEOUT_MS }),
      description: `from a request's first byte to the end of its headers; past it → 408 (at most ${REQUEST_TIMEOUT_MS})`,
    }),
    maxConnections: value({
      flag: 'max-connections',
      env: 'KEYGATE_MAX_CONNECTIONS',
      placeholder: 'N|auto',
      default: 'auto',
      parse: connectionCap,
      description:
        "client connections the proxy listener holds at once; `auto`: the open-file limit less `--upstream-connections` less 128 (for the ops listener, the store and Keygate's own files); past it a newcomer closes the oldest connection that has not sent its first request's headers (else it is closed)",
    }),
    logLevel: value({
      flag: 'log-level',
      env: 'KEYGATE_LOG_LEVEL',
      placeholder: 'LEVEL',
      default: 'info',
      parse: oneOf(LOG_LEVELS),
      description: `start-up, reload, shutdown and error lines at this level and above: ${LOG_LEVELS.join(', ')} (the access log has its own switch)`,
    }),
    accessLog: value({ flag: 'access-log', env: 'KEYGATE_ACCESS_LOG', placeholder: 'true|false', default: 'true', parse: boolean, description: 'one access line per request' }),
    logBufferBytes: value({
      flag: 'log-buffer',
      env: 'KEYGATE_LOG_BUFFER',
      placeholder: 'BYTES',
      default: '65536',
      parse: wholeNumber('bytes', { min: 0, max: 16 * 1024 * 1024 }),
      description: 'bytes of log output buffered before a write (flushed at least every 250 ms); `0` writes each line at once',
    }),
  },
});

const serve = SERVE.options;

export const DEMO = command({
  name: 'demo',
  summary: 'demo backend, four fresh keys and the sidecar, with curl lines to try',
  args: '',
  positionals: { min: 0, max: 0 },
  about: [
    'Starts the demo device backend, a demo browser app on an origin of its own, then the sidecar in front of the backend, then mints four keys (server, connect, and scoped keys for alice and bob) into a key store of its own, new on every run and removed when the demo stops, and creates a Connect link to open in a browser.',
    "The demo reads no environment variables: a deployment's KEYGATE_* settings do not change it.",
  ],
  options: {
    listen: { ...serve.listen, env: undefined, default: '127.0.0.1:8080' },
    opsListen: { ...serve.opsListen, env: undefined, default: '127.0.0.1:9090' },
    backendPort: value({
      flag: 'backend-port',
      placeholder: 'PORT',
      default: '0',
      parse: wholeNumber('port', { min: 0, max: 65535 }),
      description: "the demo backend's port on 127.0.0.1; 0 takes any free port",
    }),
    appPort: value({
      flag: 'app-port',
      placeholder: 'PORT',
      default: '0',
      parse: wholeNumber('port', { min: 0, max: 65535 }),
      description: "the demo browser app's port on 127.0.0.1 (opened as `http://localhost:PORT`); 0 takes any free port",
    }),
    policies: {
      ...serve.policies,
      env: undefined,
      default: undefined,
      defaultText: 'the shipped policies, with the device step on',
      description: "a directory of `*.yaml` policy files (or one file); by default the shipped `policies/texture.yaml` with the demo backend's manufacturer sign-in as the Connect device step",
    },
    logLevel: { ...serve.logLevel, env: undefined },
    accessLog: { ...serve.accessLog, env: undefined },
  },
});

const storeMustExist = { ...serve.store, description: 'the key store; it must exist (`serve` or `keys create` makes it)' };

export const KEYS_CREATE = command({
  name: 'keys create',
  summary: 'create a key and print its secret once',
  args: '',
  positionals: { min: 0, max: 0 },
  about: ['Creates a key and prints its secret once; the store keeps only its SHA-256 hash.'],
  options: {
    type: value({ flag: 'type', placeholder: 'TYPE', required: true, parse: keyType, description: 'the key type: `server`, `connect`, `scoped`, `operator` or `access-token`' }),
    referenceId: value({ flag: 'reference-id', placeholder: 'ID', parse: referenceId, description: 'the end user a scoped key belongs to (required for scoped keys)' }),
    name: value({ flag: 'name', placeholder: 'NAME', parse: text, description: 'a label for people (keys list shows it)' }),
    roles: list({ flag: 'role', placeholder: 'ROLE', parse: text, description: 'a role the key carries, repeatable (operator keys and access tokens)' }),
    conditions: list({ flag: 'condition', placeholder: 'ATTR:VALUE', parse: condition, description: 'a condition, repeatable; values of one attribute are any-of (operator keys and access tokens)' }),
    expiresInMs: value({ flag: 'expires-in', placeholder: 'DURATION', parse: duration(), description: 'the key stops working after this long: `30s`, `15m`, `12h`, `30d`' }),
    description: value({ flag: 'description', placeholder: 'TEXT', parse: text, description: 'free text for people (EVRYTHNG access tokens have one)' }),
    allowedOrigins: list({
      flag: 'allow-origin',
      placeholder: 'ORIGIN',
      parse: browserOrigin,
      description: 'a browser origin a connect or scoped key may be used from, exactly (`https://app.example.com`), repeatable; `http://` only for loopback hosts',
    }),
    allowedRedirects: list({
      flag: 'allow-redirect',
      placeholder: 'URL',
      parse: redirectUrl,
      description:
        'a URL the Connect links made with this key may redirect to, exactly (scheme, host, port, path: `https://app.example.com/connected`, `myapp://connected`), repeatable; no query or fragment',
    }),
    allowReferenceId: toggle({ flag: 'allow-reference-id', description: 'a connect key whose Connect links may choose the referenceId of the keys they mint' }),
    policies: value({
      flag: 'policies',
      env: 'KEYGATE_POLICIES',
      placeholder: 'PATH',
      parse: text,
      defaultText: 'unset: --role is checked against ./policies, and only warned about',
      description: 'the policies the key will meet (a directory or one file): a --role they lack is refused',
    }),
    store: { ...serve.store, description: 'the key store; made when missing (a SQLite file only in a directory that exists), upgraded when older' },
    json: toggle({ flag: 'json', description: 'print one JSON object, the secret as `key`, instead of text' }),
  },
});

export const KEYS_LIST = command({
  name: 'keys list',
  summary: 'list keys, a page at a time, by type or referenceId',
  args: '',
  positionals: { min: 0, max: 0 },
  about: [
    'Lists keys in the order they were created, never their secrets. When more keys follow than --limit shows, the last line on stderr gives the command for the next page (--after the last id shown).',
  ],
  options: {
    type: value({ flag: 'type', placeholder: 'TYPE', parse: keyType, description: 'only keys of this type' }),
    referenceId: value({ flag: 'reference-id', placeholder: 'ID', parse: referenceId, description: 'only keys of this end user' }),
    limit: value({ flag: 'limit', placeholder: 'N', default: '100', parse: limit, description: 'show at most N keys, or `all`' }),
    after: value({ flag: 'after', placeholder: 'ID', parse: text, description: 'start after the key with this id (the next page)' }),
    store: storeMustExist,
    json: toggle({ flag: 'json', description: 'one JSON object per key and line (JSON Lines), streamed' }),
  },
});

export const KEYS_REVOKE = command({
  name: 'keys revoke',
  summary: 'revoke a key',
  args: 'ID',
  positionals: { min: 1, max: 1 },
  about: [
    'Revokes the key with this id; running sidecars on the same store refuse it within a second, or within their key cache TTL (--key-cache-ttl, 2 s by default, at most 5 s) when a notice is lost.',
  ],
  options: {
    store: storeMustExist,
    keyCacheTtlMs: {
      ...serve.keyCacheTtlMs,
      default: undefined,
      defaultText: 'unset',
      description: "the sidecars' key cache TTL, when known here: the message says within how long they refuse the key (the CLI cannot see a running sidecar's setting)",
    },
  },
});

const create = KEYS_CREATE.options;

export const KEYS_SHOW = command({
  name: 'keys show',
  summary: 'show one key (never its secret)',
  args: 'ID',
  positionals: { min: 1, max: 1 },
  about: ['Shows the key with this id, as the management API does (GET /v1/api-keys/ID): its settings, state and prefix, never its secret.'],
  options: {
    store: storeMustExist,
    json: toggle({ flag: 'json', description: 'print the key object as JSON' }),
  },
});

export const KEYS_UPDATE = command({
  name: 'keys update',
  summary: "change a key's name, expiry, roles, conditions, origins or redirects",
  args: 'ID',
  positionals: { min: 1, max: 1 },
  about: [
    'Changes the key with this id; what is not given stays. A repeatable flag replaces the whole list (give it once per entry); the --clear-… switches empty one. The type, referenceId and secret never change (keys rotate makes a new secret).',
  ],
  options: {
    name: create.name,
    description: create.description,
    expiresInMs: { ...create.expiresInMs, description: 'the key stops working this long from now: `30s`, `15m`, `12h`, `30d`' },
    noExpiry: toggle({ flag: 'no-expiry', description: 'the key no longer expires' }),
    roles: { ...create.roles, description: 'the roles the key carries from now on, repeatable (operator keys and access tokens)' },
    clearRoles: toggle({ flag: 'clear-roles', description: 'the key carries no roles of its own' }),
    conditions: { ...create.conditions, description: 'the conditions from now on, repeatable; values of one attribute are any-of' },
    clearConditions: toggle({ flag: 'clear-conditions', description: 'the key has no conditions' }),
    allowedOrigins: { ...create.allowedOrigins, description: 'the browser origins from now on, repeatable (connect and scoped keys)' },
    clearOrigins: toggle({ flag: 'clear-origins', description: 'no browser origin may use the key' }),
    allowedRedirects: { ...create.allowedRedirects, description: 'the Connect redirect URLs from now on, repeatable' },
    clearRedirects: toggle({ flag: 'clear-redirects', description: 'no redirect URL is allowed' }),
    allowReferenceId: value({ flag: 'allow-reference-id', placeholder: 'true|false', parse: boolean, description: "whether a connect key's links may choose the referenceId of the keys they mint" }),
    policies: create.policies,
    store: storeMustExist,
    json: toggle({ flag: 'json', description: 'print the changed key as JSON' }),
  },
});

export const KEYS_ROTATE = command({
  name: 'keys rotate',
  summary: 'give a key a new secret; the old one works for a grace period',
  args: 'ID',
  positionals: { min: 1, max: 1 },
  about: ["Makes a new secret for the key with this id (same id, same settings) and prints it once. The current secret keeps working for --grace (never past the key's own expiry), then is refused."],
  options: {
    graceMs: value({
      flag: 'grace',
      placeholder: 'DURATION',
      parse: duration({ max: { ms: 7 * 86_400_000, text: '7d' } }),
      defaultText: 'none: the old secret stops at once',
      description: 'how long the current secret keeps working, at most `7d`',
    }),
    store: storeMustExist,
    json: toggle({ flag: 'json', description: 'print one JSON object, the new secret as `key`' }),
  },
});

export const KEYS_EVENTS = command({
  name: 'keys events',
  summary: "a key's audit trail: who created, changed, rotated or revoked it, and when",
  args: 'ID',
  positionals: { min: 1, max: 1 },
  about: ['Prints the events of the key with this id, oldest first: created, updated (what changed), rotated, revoked, expired, each with its actor (cli, a key id, link:ID, keygate).'],
  options: {
    store: storeMustExist,
    json: toggle({ flag: 'json', description: 'one JSON object per event and line (JSON Lines)' }),
  },
});

const policies = { ...serve.policies, description: 'a directory of `*.yaml` policy files (or one file); PATH may be given instead' };

export const POLICY_CHECK = command({
  name: 'policy check',
  summary: 'validate policies (exit 1 with file:line:col errors)',
  args: '[PATH]',
  positionals: { min: 0, max: 1 },
  about: ['Loads the policies as serve would and prints what they hold, or every error with its file:line:col.'],
  options: { policies },
});

export const POLICY_TEST = command({
  name: 'policy test',
  summary: 'run the policy test files (*.test.yaml)',
  args: '[PATH]',
  positionals: { min: 0, max: 1 },
  about: ['Runs every *.test.yaml beside the policies (or the one test file PATH names). Exit 3: a policy or test file is invalid; exit 4: a test failed.'],
  options: { policies, verbose: toggle({ flag: 'verbose', description: 'print passing cases too, with the rule that decided each' }) },
});

export const POLICY_EXPLAIN = command({
  name: 'policy explain',
  summary: 'show which route and rule decide a request',
  args: 'METHOD PATH',
  positionals: { min: 2, max: 2 },
  about: ['Explains how the policies decide METHOD PATH for a key of the given type.'],
  options: {
    policies: { ...serve.policies },
    keyType: value({ flag: 'key-type', placeholder: 'TYPE', default: 'server', parse: keyType, description: 'the key type asking' }),
    referenceId: value({ flag: 'reference-id', placeholder: 'ID', parse: referenceId, description: "the key's referenceId (scoped keys)" }),
    roles: list({ flag: 'role', placeholder: 'ROLE', parse: text, description: 'a role the key carries, repeatable' }),
    conditions: list({ flag: 'condition', placeholder: 'ATTR:VALUE', parse: condition, description: 'a condition the key carries, repeatable' }),
  },
});

export const COMMANDS: readonly CommandSpec[] = [SERVE, DEMO, KEYS_CREATE, KEYS_LIST, KEYS_SHOW, KEYS_UPDATE, KEYS_ROTATE, KEYS_REVOKE, KEYS_EVENTS, POLICY_CHECK, POLICY_TEST, POLICY_EXPLAIN];
