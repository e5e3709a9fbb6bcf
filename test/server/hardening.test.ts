import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Memex } from '../../src/index.js';
import { KeyStore, serve } from '../../src/server/index.js';
import { modelEnv } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';
import { body, expectProblem, served, type Served } from './setup.js';

/** Sends raw bytes over a socket and resolves with what the server answered (status line and all). */
function rawExchange(url: string, head: string, trickle: { bytes: string; everyMs: number }): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    let answer = '';
    let timer: NodeJS.Timeout | undefined;
    socket.on('connect', () => {
      socket.write(head);
      timer = setInterval(() => {
        if (!socket.destroyed) socket.write(trickle.bytes);
      }, trickle.everyMs);
    });
    socket.on('data', (data: Buffer) => {
      answer += data.toString();
    });
    socket.on('error', (error) => (answer ? resolve(answer) : reject(error)));
    socket.on('close', () => {
      clearInterval(timer);
      resolve(answer);
    });
  });
}

describe('JSON nested thousands of levels deep', () => {
  let s: Served;
  beforeAll(async () => {
    s = await served();
  });
  afterAll(async () => {
    await s.close();
  });

  it('answers 400 MEMEX_INVALID_INPUT, not 500 (deep JSON was a 500)', async () => {
    const session = body<{ id: string }>(await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: s.alice, payload: {} }), 201).id;
    for (const depth of [5_000, 50_000]) {
      const deep = `{"role":"user","content":"x","metadata":{"a":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
      const headers = { ...s.alice, 'content-type': 'application/json' };
      for (const url of [`/v1/sessions/${session}/messages`, `/v1/sessions/${session}`, '/v1/search', '/v1/me']) {
        const method = url === '/v1/me' || url === `/v1/sessions/${session}` ? 'PATCH' : 'POST';
        const response = await s.app.inject({ method, url, headers, payload: deep });
        expectProblem(response, 400, 'MEMEX_INVALID_INPUT');
      }
      const objects = `{"metadata":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`;
      expectProblem(await s.app.inject({ method: 'PATCH', url: '/v1/me', headers, payload: objects }), 400, 'MEMEX_INVALID_INPUT');
    }
    expect((await s.memex.messages.list('alice', session)).total).toBe(0);
  });
});

describe('slow clients', () => {
  it('answers 408 once server.requestTimeoutMs passes for a trickled body (it took 90 s)', { timeout: 10_000 }, async () => {
    const dataDir = await tempDir();
    const memex = await Memex.open({ dataDir, env: modelEnv });
    const { key } = await new KeyStore(dataDir).create('alice');
    const server = await serve(memex, { port: 0, handleSignals: false, server: { requestTimeoutMs: 300 } });
    try {
      const head = [
        'POST /v1/sessions HTTP/1.1',
        `Host: ${new URL(server.url).host}`,
        `Authorization: Bearer ${key}`,
        'Content-Type: application/json',
        'Content-Length: 100000',
        '',
        '',
      ].join('\r\n');
      const answer = await rawExchange(server.url, head, { bytes: ' ', everyMs: 50 });
      expect(answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(answer).toContain('"code":"MEMEX_REQUEST_TIMEOUT"');
    } finally {
      await server.stop();
    }
  });
});

describe('failed authentication', () => {
  it('is rate-limited by client address (3,000 wrong keys were all 401), without hurting other addresses', async () => {
    const s = await served({ server: { failedAuthLimit: { max: 5, windowMs: 60_000 } } });
    try {
      const wrong = { authorization: `Bearer mx_aaaaaaaaaaaa_${'A'.repeat(43)}` };
      // No key guesses nothing: it is refused, and does not count (the web page asks keyless on every load).
      for (let i = 0; i < 10; i++) expectProblem(await s.app.inject({ url: '/v1/me', remoteAddress: '10.0.0.1' }), 401, 'MEMEX_UNAUTHORIZED');
      for (let i = 0; i < 5; i++) expectProblem(await s.app.inject({ url: '/v1/me', headers: wrong, remoteAddress: '10.0.0.1' }), 401, 'MEMEX_UNAUTHORIZED');
      const limited = await s.app.inject({ url: '/v1/me', headers: wrong, remoteAddress: '10.0.0.1' });
      expectProblem(limited, 429, 'MEMEX_RATE_LIMITED');
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      // A blocked address is refused with no header too, and a blocked address cannot go on guessing with a right key either.
      expectProblem(await s.app.inject({ url: '/v1/me', remoteAddress: '10.0.0.1' }), 429, 'MEMEX_RATE_LIMITED');
      expectProblem(await s.app.inject({ url: '/v1/me', headers: s.alice, remoteAddress: '10.0.0.1' }), 429, 'MEMEX_RATE_LIMITED');
      // Other addresses: valid keys work, wrong ones still get their own 401s.
      expect((await s.app.inject({ url: '/v1/me', headers: s.alice, remoteAddress: '10.0.0.2' })).statusCode).toBe(200);
      expectProblem(await s.app.inject({ url: '/v1/me', headers: wrong, remoteAddress: '10.0.0.3' }), 401, 'MEMEX_UNAUTHORIZED');
      // Public routes stay open to everyone.
      expect((await s.app.inject({ url: '/v1/health', remoteAddress: '10.0.0.1' })).statusCode).toBe(200);
    } finally {
      await s.close();
    }
  });
});
