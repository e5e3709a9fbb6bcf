import type { ChildProcess } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { Memex } from '../../src/index.js';
import { KeyStore, serve } from '../../src/server/index.js';
import { EVAL_FILES_MISSING, hasEvalFiles, PDFS } from '../helpers/eval.js';
import { modelEnv } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';
import { multipart, startServer } from './setup.js';


async function call(base: string, path: string, init: RequestInit & { key: string }): Promise<{ status: number; json: Record<string, unknown> }> {
  const { key, ...rest } = init;
  const response = await fetch(`${base}${path}`, { ...rest, headers: { authorization: `Bearer ${key}`, ...(rest.body && typeof rest.body === 'string' ? { 'content-type': 'application/json' } : {}), ...(rest.headers as Record<string, string>) } });
  const text = await response.text();
  return { status: response.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function untilJobEnds(base: string, key: string, jobId: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 2400; i++) {
    const { json } = await call(base, `/v1/jobs/${jobId}`, { key });
    if (json.state !== 'queued' && json.state !== 'running') return json;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`job ${jobId} did not end`);
}

describe('over a real socket on loopback', () => {
  it('serves requests and server-sent events, and stops gracefully, finishing the append in flight', async () => {
    const dataDir = await tempDir();
    const memex = await Memex.open({ dataDir, env: modelEnv });
    const { key } = await new KeyStore(dataDir).create('alice');
    const server = await serve(memex, { port: 0, handleSignals: false });
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await fetch(`${server.url}/v1/health`);
    expect(health.headers.get('x-request-id')).toMatch(/^[0-9a-f]{16}$/);
    const session = await call(server.url, '/v1/sessions', { key, method: 'POST', body: JSON.stringify({ title: 'Socket' }) });
    expect(session.status).toBe(201);
    const sid = session.json.id as string;

    const png = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#fff' } }).png().toBuffer();
    const upload = multipart({ name: 'blank.png', bytes: png });
    const accepted = await call(server.url, `/v1/sessions/${sid}/files`, { key, method: 'POST', body: upload.payload, headers: upload.headers });
    expect(accepted.status).toBe(202);
    const events = await fetch(`${server.url}/v1/jobs/${(accepted.json.job as { id: string }).id}/events`, { headers: { authorization: `Bearer ${key}` } });
    expect(events.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const stream = await events.text(); // the server ends the stream when the job ends
    expect(stream).toMatch(/^event: (done|failed)$/m);

    // Stop while an append is in flight: it is answered, and it is on disk after a reopen.
    const inFlight = call(server.url, `/v1/sessions/${sid}/messages`, { key, method: 'POST', body: JSON.stringify({ role: 'user', content: 'written during shutdown' }) });
    await new Promise((resolve) => setTimeout(resolve, 5));
    await server.stop();
    expect((await inFlight).status).toBe(201);
    await expect(fetch(`${server.url}/v1/health`)).rejects.toThrow();
    const reopened = await Memex.open({ dataDir, env: modelEnv });
    try {
      expect((await reopened.messages.list('alice', sid)).messages.map((m) => m.content)).toEqual(['written during shutdown']);
    } finally {
      await reopened.close();
    }
  });
});

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))));
}

describe('a restart in the middle of an upload', () => {
  it.skipIf(!hasEvalFiles)('loses nothing that was acknowledged, and leaves nothing of the cut upload', { timeout: 180_000 }, async () => {
    const dataDir = await tempDir();
    const { key } = await new KeyStore(dataDir).create('alice');
    let server = await startServer(dataDir);
    const sid = (await call(server.url, '/v1/sessions', { key, method: 'POST', body: JSON.stringify({ title: 'Restart' }) })).json.id as string;

    // Acknowledged before the crash: an upload (its job maybe not finished) and a message.
    const first = multipart({ name: 'review.pdf', bytes: await readFile(join(PDFS, 'TAMReview.pdf')) });
    const accepted = await call(server.url, `/v1/sessions/${sid}/files`, { key, method: 'POST', body: first.payload, headers: first.headers });
    expect(accepted.status).toBe(202);
    const message = await call(server.url, `/v1/sessions/${sid}/messages`, { key, method: 'POST', body: JSON.stringify({ role: 'user', content: 'the review is uploaded' }) });
    expect(message.status).toBe(201);

    // Half of a second upload is sent, then the server is killed (no chance to clean up).
    const secondBytes = await readFile(join(PDFS, 'issue9418.pdf'));
    const second = multipart({ name: 'half.pdf', bytes: secondBytes });
    const { port, hostname } = new URL(server.url);
    const cut = httpRequest({ host: hostname, port, method: 'POST', path: `/v1/sessions/${sid}/files`, headers: { ...second.headers, authorization: `Bearer ${key}`, 'content-length': String(second.payload.length) } });
    cut.on('error', () => undefined);
    cut.write(second.payload.subarray(0, second.payload.length >> 1));
    const staging = join(dataDir, 'users', 'alice', 'sessions', sid, 'files');
    for (let i = 0; i < 200 && !(await readdir(staging).catch(() => [] as string[])).some((name) => name.startsWith('.upload.')); i++) await new Promise((resolve) => setTimeout(resolve, 25));
    server.child.kill('SIGKILL');
    await exited(server.child);
    cut.destroy();

    server = await startServer(dataDir);
    try {
      const job = await untilJobEnds(server.url, key, (accepted.json.job as { id: string }).id);
      expect(job).toMatchObject({ state: 'done', result: { kind: 'pdf' } });
      const files = (await call(server.url, `/v1/sessions/${sid}/files`, { key })).json.files as { name: string; content?: { chunks: number } }[];
      expect(files.map((f) => f.name)).toEqual(['review.pdf']);
      expect(files[0]!.content?.chunks).toBeGreaterThan(0);
      const messages = (await call(server.url, `/v1/sessions/${sid}/messages`, { key })).json.messages as { content: string }[];
      expect(messages.map((m) => m.content)).toEqual(['the review is uploaded']);

      // The client sends the cut upload again: it is stored whole, once, and the cut one's bytes are gone.
      const retry = await call(server.url, `/v1/sessions/${sid}/files`, { key, method: 'POST', body: second.payload, headers: second.headers });
      expect(retry.status).toBe(202);
      expect(await untilJobEnds(server.url, key, (retry.json.job as { id: string }).id)).toMatchObject({ state: 'done' });
      const names = await readdir(staging);
      expect(names.filter((name) => name.startsWith('.upload.'))).toEqual([]);
      const after = (await call(server.url, `/v1/sessions/${sid}/files`, { key })).json.files as { name: string; size: number }[];
      expect(after.map((f) => [f.name, f.size]).sort()).toEqual([['half.pdf', secondBytes.length], ['review.pdf', expect.any(Number)]].sort());
    } finally {
      server.child.kill('SIGTERM');
      expect(await exited(server.child)).toBe(0);
    }
  });
  it.skipIf(hasEvalFiles)(EVAL_FILES_MISSING, () => undefined);
});
