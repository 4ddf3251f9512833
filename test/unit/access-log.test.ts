import { describe, expect, it } from 'vitest';
import { redactKeys } from '../../src/keys/key-format.ts';
import { AccessLog, msText } from '../../src/observability/access-log.ts';

function capture(): { log: AccessLog; lines: string[] } {
  const lines: string[] = [];
  const log = new AccessLog({ write: (s: string) => lines.push(s) > 0 } as never, true);
  return { log, lines };
}

describe('access log line', () => {
  it('prints a latency exactly as String() would, for every hundredth up to 30 s', () => {
    for (let h = 0; h <= 3_000_000; h++) {
      const ms = Math.round((h / 100) * 100_000) / 100_000; // as the proxy computes it: Math.round(s * 100000) / 100
      const v = Math.round(ms * 100) / 100;
      if (msText(v) !== String(v)) throw new Error(`${v}: ${msText(v)} != ${String(v)}`);
    }
    for (const v of [0.001, 1e-7, 123.456, -1, Number.NaN, 2 ** 40, 12_345_678.91]) expect(msText(v)).toBe(String(v));
  });

  it('is one JSON line whose strings are escaped where needed and quoted as-is otherwise', () => {
    const { log, lines } = capture();
    const weird = '/v1/dev"ices\\x\u0001\u2028é';
    log.write({
      requestId: 'ab12-1',
      method: 'GET',
      path: weird,
      route: 'GET /v1/devices',
      keyId: 'key_x',
      keyType: 'scoped',
      decision: 'forbidden',
      status: 403,
      code: 'ACTION_NOT_ALLOWED',
      detail: 'a "quoted"\nthing',
      latencyMs: 1.5,
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.endsWith('}\n')).toBe(true);
    expect(lines[0]!.slice(0, -1)).not.toContain('\n');
    const o = JSON.parse(lines[0]!);
    expect(o).toMatchObject({
      level: 30,
      service: 'keygate',
      requestId: 'ab12-1',
      method: 'GET',
      path: weird,
      route: 'GET /v1/devices',
      keyId: 'key_x',
      keyType: 'scoped',
      decision: 'forbidden',
      status: 403,
      code: 'ACTION_NOT_ALLOWED',
      detail: 'a "quoted"\nthing',
      latencyMs: 1.5,
      msg: 'access',
    });
    expect(Math.abs(o.time - Date.now())).toBeLessThan(5_000);
  });

  it('leaves absent fields out, as pino does', () => {
    const { log, lines } = capture();
    log.write({
      requestId: 'r',
      method: undefined,
      path: undefined,
      route: '-',
      keyId: undefined,
      keyType: undefined,
      decision: 'unauthenticated',
      status: 401,
      code: 'KEY_MISSING',
      detail: undefined,
      latencyMs: 0.07,
    });
    const o = JSON.parse(lines[0]!);
    expect(Object.keys(o)).toEqual(['level', 'time', 'service', 'requestId', 'route', 'decision', 'status', 'code', 'latencyMs', 'msg']);
    expect(o.latencyMs).toBe(0.07);
  });
});

describe('keys in logged text', () => {
  const body = 'A'.repeat(32) + 'abc123';
  it.each([
    [`/v1/devices/api_${body}`, '/v1/devices/{key}'],
    [`/v1/scoped_${body}/x/scoped_${body}`, '/v1/{key}/x/{key}'],
    [`/v1/devices/api_${body.slice(1)}`, `/v1/devices/api_${body.slice(1)}`],
    ['/v1/devices/dev_api_1', '/v1/devices/dev_api_1'],
    ['/v1/devices', '/v1/devices'],
  ])('%s is logged as %s', (text, logged) => {
    expect(redactKeys(text)).toBe(logged);
  });
});
