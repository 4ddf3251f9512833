import { request } from 'undici';
import { unknownKey } from './fixtures.ts';
import type { LoadCase } from './scenarios.ts';

/** Long enough for a loaded machine, short enough that a wedged target fails the run quickly. */
const PROBE_TIMEOUT_MS = 5_000;

/**
 * One request of a case, checked like every response under load (status and body), with
 * a deadline. Undefined when the target answered correctly; otherwise what went wrong.
 */
export async function probe(c: LoadCase, timeoutMs = PROBE_TIMEOUT_MS): Promise<string | undefined> {
  const headers = c.freshKey === true ? { ...c.headers, 'texture-api-key': unknownKey() } : c.headers;
  try {
    const res = await request(c.target.url + c.path, {
      method: c.method,
      headers,
      body: c.body,
      // A connection of its own, closed after the answer: a socket kept from an earlier
      // probe must not hide a target that no longer accepts new connections.
      reset: true,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = await res.body.text();
    const wrong = res.statusCode !== c.expectStatus ? `status ${res.statusCode} (expected ${c.expectStatus})` : c.check(body);
    return wrong === undefined ? undefined : `${wrong}: ${body.slice(0, 300)}`;
  } catch (err) {
    return `no answer within ${timeoutMs} ms (${(err as Error).message})`;
  }
}

/** Every case once, all targets at the same time; one line per case that did not answer right. */
async function probeAll(cases: readonly LoadCase[], timeoutMs = PROBE_TIMEOUT_MS): Promise<string[]> {
  const results = await Promise.all(cases.map(async (c) => ({ c, wrong: await probe(c, timeoutMs) })));
  return results.filter((r) => r.wrong !== undefined).map(({ c, wrong }) => `${c.label} (${c.method} ${c.path}): ${wrong}`);
}

/**
 * One request per case, checked, with a deadline: before any load (a broken setup fails in
 * a second with a clear message) and again after the warm-up and after every round. A load
 * run ends by closing its connections with requests in flight, and a target that wedged on
 * that (the undici forwarder once did) would go on to be compared as a half-dead ceiling:
 * the run stops instead.
 */
export async function assertAlive(cases: readonly LoadCase[], when: string): Promise<void> {
  const dead = await probeAll(cases);
  if (dead.length > 0) throw new Error(`${when}: ${dead.length} target(s) did not answer correctly:\n  ${dead.join('\n  ')}`);
}
