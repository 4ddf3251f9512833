import { OWN_DEVICE, TOTAL_DEVICES } from './fixtures.ts';
import type { BenchKeys } from './keys.ts';
import type { Target } from './targets.ts';

/** One request shape sent over and over, and what every answer to it must look like. */
export interface LoadCase {
  /** Stable id used in the JSON and for ratios: direct, undici, http-proxy-3, nginx, s1 … s6. */
  readonly id: string;
  readonly label: string;
  readonly kind: 'baseline' | 'keygate';
  /** Keygate scenario number (1–6, 8); the cold start (7) is not a load case. */
  readonly scenario?: number;
  readonly target: Target;
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Send a new well-formed unknown key on every request (the 401 flood). */
  readonly freshKey?: boolean;
  readonly expectStatus: number;
  /** Undefined when the body is right, else what is wrong with it. */
  readonly check: (body: string) => string | undefined;
}

function parse(body: string): any {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

/** A Texture list whose every item belongs to `referenceId` (and there is at least one). */
export function onlyOwnItems(referenceId: string): (body: string) => string | undefined {
  return (body) => {
    const data = parse(body)?.data;
    if (!Array.isArray(data) || data.length === 0) return 'not a non-empty list';
    for (const item of data) if (item?.referenceId !== referenceId) return `item ${String(item?.id)} belongs to ${String(item?.referenceId)}`;
    return undefined;
  };
}

function everyDevice(body: string): string | undefined {
  const data = parse(body)?.data;
  return Array.isArray(data) && data.length === TOTAL_DEVICES ? undefined : `expected ${TOTAL_DEVICES} devices`;
}

function ownDevice(body: string): string | undefined {
  const d = parse(body);
  return d?.id === OWN_DEVICE && d?.referenceId === 'alice' ? undefined : `expected device ${OWN_DEVICE} of alice`;
}

function commandOnOwnDevice(body: string): string | undefined {
  const c = parse(body);
  return typeof c?.id === 'string' && c?.deviceId === OWN_DEVICE ? undefined : `expected a command on ${OWN_DEVICE}`;
}

/** Keygate's error JSON with this status (a 401 must not be the backend's 401, a 403 not a 404). */
export function keygateError(status: number): (body: string) => string | undefined {
  return (body) => (parse(body)?.error?.status === status ? undefined : `expected a Keygate ${status} error body`);
}

/** The request every baseline carries: scenario 2's after injection, so the backend does the same work. */
const ALICE_LIST = '/v1/devices?referenceId=alice';

export interface CaseTargets {
  readonly backend: Target;
  readonly undici: Target;
  readonly httpProxy3: Target;
  readonly nginx: Target | undefined;
  readonly keygate: Target;
}

export function baselineCases(t: CaseTargets): LoadCase[] {
  const base = { kind: 'baseline' as const, method: 'GET' as const, path: ALICE_LIST, headers: {}, expectStatus: 200, check: onlyOwnItems('alice') };
  const cases: LoadCase[] = [
    { ...base, id: 'direct', label: 'backend direct', target: t.backend },
    { ...base, id: 'undici', label: 'bare undici forwarder', target: t.undici },
    { ...base, id: 'http-proxy-3', label: 'bare http-proxy-3', target: t.httpProxy3 },
  ];
  if (t.nginx !== undefined) cases.push({ ...base, id: 'nginx', label: 'nginx pass-through', target: t.nginx });
  return cases;
}

export function keygateCases(t: CaseTargets, keys: BenchKeys): LoadCase[] {
  const k = { kind: 'keygate' as const, target: t.keygate };
  const server = { 'texture-api-key': keys.server };
  const alice = { 'texture-api-key': keys.alice };
  return [
    { ...k, id: 's1', scenario: 1, label: 'kg 1 server key list', method: 'GET', path: '/v1/devices', headers: server, expectStatus: 200, check: everyDevice },
    { ...k, id: 's2', scenario: 2, label: 'kg 2 scoped list+filter', method: 'GET', path: '/v1/devices', headers: alice, expectStatus: 200, check: onlyOwnItems('alice') },
    { ...k, id: 's3', scenario: 3, label: 'kg 3 scoped own device', method: 'GET', path: `/v1/devices/${OWN_DEVICE}`, headers: alice, expectStatus: 200, check: ownDevice },
    {
      ...k,
      id: 's4',
      scenario: 4,
      label: 'kg 4 scoped command',
      method: 'POST',
      path: '/v1/commands/thermostat/setMode',
      headers: { ...alice, 'content-type': 'application/json' },
      body: JSON.stringify({ deviceId: OWN_DEVICE, input: { mode: 'heat' } }),
      expectStatus: 201,
      check: commandOnOwnDevice,
    },
    { ...k, id: 's5', scenario: 5, label: 'kg 5 401 flood (new key)', method: 'GET', path: '/v1/devices', headers: {}, freshKey: true, expectStatus: 401, check: keygateError(401) },
    { ...k, id: 's6', scenario: 6, label: 'kg 6 403 flood', method: 'GET', path: '/v1/sites', headers: alice, expectStatus: 403, check: keygateError(403) },
    // Scenario 2 with a rate limit on its key (local counters, a limit it never reaches):
    // what counting, and the RateLimit fields on every answer, cost.
    {
      ...k,
      id: 's8',
      scenario: 8,
      label: 'kg 8 = 2 + rate limit',
      method: 'GET',
      path: '/v1/devices',
      headers: { 'texture-api-key': keys.aliceLimited.key },
      expectStatus: 200,
      check: onlyOwnItems('alice'),
    },
  ];
}
