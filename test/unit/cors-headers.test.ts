import { createServer, type IncomingHttpHeaders, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { answerWithCors } from '../../src/cors/cors-headers.ts';
import { KnownOrigins } from '../../src/cors/known-origins.ts';

async function headersOf(write: (res: ServerResponse) => void): Promise<IncomingHttpHeaders> {
  const server = createServer((_req, res) => write(res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    return await new Promise((resolve, reject) => {
      request({ host: '127.0.0.1', port, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.headers));
      })
        .on('error', reject)
        .end();
    });
  } finally {
    server.close();
  }
}

describe('CORS headers on an answer', () => {
  it("replace the backend's Access-Control-* headers with Keygate's, echo the origin exactly and add Origin to Vary", async () => {
    const h = await headersOf((res) => {
      answerWithCors(res, 'https://app.example.com');
      res.writeHead(200, ['content-type', 'application/json', 'Access-Control-Allow-Origin', '*', 'access-control-allow-credentials', 'true', 'vary', 'Accept-Encoding']);
      res.end('{}');
    });
    expect(h['access-control-allow-origin']).toBe('https://app.example.com');
    expect(h['access-control-allow-credentials']).toBeUndefined();
    expect(h['access-control-expose-headers']).toContain('X-Request-Id');
    expect(h.vary).toBe('Accept-Encoding, Origin');
    expect(h['content-type']).toBe('application/json');
  });

  it('work for answers written with a header object (the error renderer)', async () => {
    const h = await headersOf((res) => {
      answerWithCors(res, 'http://localhost:5173');
      res.writeHead(403, { 'content-type': 'application/json', 'x-request-id': 'r1' });
      res.end('{}');
    });
    expect(h['access-control-allow-origin']).toBe('http://localhost:5173');
    expect(h['x-request-id']).toBe('r1');
    expect(h.vary).toBe('Origin');
  });
});

describe('known origins (preflights)', () => {
  it('are read from the store, learn what keyed requests proved, and keep the last set when a read fails', async () => {
    let answer: Promise<string[]> = Promise.resolve(['https://a.example']);
    const errors: unknown[] = [];
    const known = new KnownOrigins(
      () => answer,
      (e) => errors.push(e),
    );
    await known.refresh();
    expect(known.has('https://a.example')).toBe(true);
    expect(known.has('https://a.example.evil')).toBe(false);
    known.learn('https://b.example');
    expect(known.has('https://b.example')).toBe(true);
    answer = Promise.reject(new Error('store down'));
    await known.refresh();
    expect(errors).toHaveLength(1);
    expect(known.has('https://a.example')).toBe(true);
    answer = Promise.resolve([]);
    await known.refresh();
    expect(known.has('https://a.example')).toBe(false);
    expect(known.has('https://b.example')).toBe(false);
  });
});
