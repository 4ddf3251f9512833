import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AccessLog } from '../../src/observability/access-log.ts';
import { LogDestination } from '../../src/observability/log-destination.ts';

function fileDestination(minLength: number, maxPending?: number) {
  const path = join(mkdtempSync(join(tmpdir(), 'keygate-log-')), 'out.log');
  const fd = openSync(path, 'w');
  const dest = new LogDestination(fd, minLength, maxPending);
  const flushed = () => new Promise<void>((resolve, reject) => dest.flush((err) => (err ? reject(err) : resolve())));
  return { dest, flushed, read: () => readFileSync(path, 'utf8'), close: () => closeSync(fd) };
}

describe('LogDestination', () => {
  it('writes every line in order across slabs, short and long lines, multi-byte text', async () => {
    const f = fileDestination(4096);
    const lines: string[] = [];
    for (let i = 0; i < 5000; i++) lines.push(`{"n":${i},"s":"${'é€'.repeat(i % 7)}"}\n`);
    lines.push(`{"big":"${'x'.repeat(200_000)}"}\n`);
    for (let i = 0; i < 100; i++) lines.push(`{"after":${i}}\n`);
    for (const l of lines) f.dest.write(l);
    await f.flushed();
    expect(f.read()).toBe(lines.join(''));
    f.close();
  });

  it('holds lines below the threshold until flushed; flushSync writes the rest at exit', async () => {
    const f = fileDestination(1 << 20);
    f.dest.write('one\n');
    await new Promise((r) => setTimeout(r, 20));
    expect(f.read()).toBe('');
    f.dest.write('two\n');
    f.dest.flushSync();
    expect(f.read()).toBe('one\ntwo\n');
    f.close();
  });

  it('drops and counts lines once the reader is maxPending bytes behind, instead of growing', async () => {
    const f = fileDestination(1 << 30, 1000);
    for (let i = 0; i < 100; i++) f.dest.write(`${'y'.repeat(99)}\n`);
    expect(f.dest.dropped).toBeGreaterThan(80);
    await f.flushed();
    expect(f.read().length).toBeLessThanOrEqual(1100);
    f.close();
  });
});

describe('AccessLog', () => {
  it('writes one JSON line per request with pino’s fields, escaping what needs it', async () => {
    const f = fileDestination(0);
    const log = new AccessLog(f.dest, true);
    log.write({
      requestId: 'r-1',
      method: 'GET',
      path: '/v1/"odd"\\path',
      route: 'GET /v1/devices',
      keyId: 'key_1',
      keyType: 'scoped',
      decision: 'forbidden',
      status: 403,
      code: 'RESOURCE_NOT_ALLOWED',
      detail: 'line\nbreak',
      latencyMs: 1.25,
    });
    log.write({
      requestId: 'r-2',
      method: 'GET',
      path: '/x',
      route: 'unmatched',
      keyId: undefined,
      keyType: undefined,
      decision: 'unauthenticated',
      status: 401,
      code: 'KEY_MISSING',
      detail: undefined,
      latencyMs: 0.1,
    });
    await f.flushed();
    const [a, b, rest] = f.read().split('\n');
    expect(rest).toBe('');
    const first = JSON.parse(a!) as Record<string, unknown>;
    expect(first).toMatchObject({ level: 30, service: 'keygate', requestId: 'r-1', path: '/v1/"odd"\\path', detail: 'line\nbreak', status: 403, msg: 'access' });
    expect(typeof first.time).toBe('number');
    const second = JSON.parse(b!) as Record<string, unknown>;
    expect('keyId' in second).toBe(false);
    expect(second.code).toBe('KEY_MISSING');
    f.close();
  });

  it('writes nothing when the level is above info', async () => {
    const f = fileDestination(0);
    new AccessLog(f.dest, false).write({
      requestId: 'r',
      method: 'GET',
      path: '/',
      route: '-',
      keyId: undefined,
      keyType: undefined,
      decision: 'allow',
      status: 200,
      code: undefined,
      detail: undefined,
      latencyMs: 1,
    });
    await f.flushed();
    expect(f.read()).toBe('');
    f.close();
  });
});
