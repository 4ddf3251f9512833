// Every measured run follows a lead-in of the same load, so no run measures a target
// waking from idle: a real HTTP server records when requests arrive, and the bursts it
// sees are the lead-ins and the measured runs, in that order.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OptionError, parseOptions } from '../../bench/options.ts';
import { measureRounds } from '../../bench/rounds.ts';
import type { LoadCase } from '../../bench/scenarios.ts';

let server: Server;
const arrivals: number[] = [];

beforeAll(async () => {
  server = createServer((_req, res) => {
    arrivals.push(performance.now());
    res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('bench --lead-in', () => {
  it('is 1 s by default, 0 turns it off, and anything else is refused naming the flag', () => {
    expect(parseOptions([]).leadIn).toBe(1);
    expect(parseOptions(['--lead-in', '0']).leadIn).toBe(0);
    expect(parseOptions(['--lead-in=3']).leadIn).toBe(3);
    expect(() => parseOptions(['--lead-in', '-1'])).toThrow(OptionError);
    expect(() => parseOptions(['--lead-in', 'x'])).toThrow(/--lead-in/);
  });

  it('runs unmeasured load just before each measured run: kept apart from the medians, its errors still counted', async () => {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const c: LoadCase = {
      id: 'x',
      label: 'x',
      kind: 'baseline',
      target: { url, pids: [process.pid], stop: async () => {} },
      method: 'GET',
      path: '/',
      headers: {},
      expectStatus: 200,
      check: () => undefined,
    };
    const runs: Array<[start: number, seen: number]> = [];
    const { rounds, unkept } = await measureRounds({
      cases: [c],
      rounds: 2,
      warmup: 0,
      leadIn: 1,
      duration: 1,
      retries: 0,
      loadFor: () => ({ connections: 2, backendPids: [] }),
      log: () => {},
      afterRun: async (_c, m) => {
        runs.push([performance.now() - m.seconds * 1000, arrivals.length]);
      },
    });
    expect(rounds.get('x')).toHaveLength(2);
    expect(unkept.get('x')).toHaveLength(2);
    for (const lead of unkept.get('x')!) expect(lead.requests).toBeGreaterThan(0);
    // Each measured run's requests came right after a lead-in's: twice as many arrived as the rounds kept.
    const measured = rounds.get('x')!.reduce((n, m) => n + m.requests, 0);
    const led = unkept.get('x')!.reduce((n, m) => n + m.requests, 0);
    expect(arrivals.length).toBeGreaterThanOrEqual(measured + led);
    // And the lead-in came just before: requests arrived in the second before each measured run began.
    expect(runs).toHaveLength(2);
    for (const [start] of runs) expect(arrivals.filter((t) => t > start - 1_200 && t < start - 20).length, 'lead-in arrivals before a run').toBeGreaterThan(0);
  }, 30_000);
});
