import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import { Memex, type ConfigInput, type Embedder } from '../../src/index.js';
import { buildApp, KeyStore, type ApiKeyStore, type App, type AppOptions } from '../../src/server/index.js';
import { backendConfig, type Backend } from '../helpers/backends.js';
import { modelEnv } from '../helpers/model.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Served {
  app: App;
  memex: Memex;
  dataDir: string;
  /** The keys the app checks: the data dir's api_keys.json, or the database's table on PostgreSQL. */
  keys: ApiKeyStore;
  /** Authorization headers for alice and bob, two users with a key each. */
  alice: Record<string, string>;
  bob: Record<string, string>;
  close(): Promise<void>;
}

let shared: Promise<Embedder> | null = null;

/** The real model (or the named fallback), loaded once for all server tests in a file. */
async function embedder(): Promise<Embedder> {
  shared ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'memex-probe-'));
    const probe = await Memex.open({ dataDir: dir, env: modelEnv });
    try {
      return await probe.embedder();
    } finally {
      await probe.close();
      await rm(dir, { recursive: true, force: true });
    }
  })();
  return shared;
}

/** A data dir with two users (a key each) and the app over it, for `inject()`. */
export async function served(options: AppOptions & { config?: Partial<ConfigInput>; backend?: Backend } = {}): Promise<Served> {
  // Not tempDir(): these live across the tests of a file (beforeAll), and go in close().
  const dataDir = await mkdtemp(join(tmpdir(), 'memex-server-'));
  const { backend = 'flat', config, ...appOptions } = options;
  const memex = await Memex.open({ dataDir, env: modelEnv, embedder: await embedder(), config: { ...(await backendConfig(backend, dataDir)), ...config } });
  // On PostgreSQL the keys are the database's (the Memex's own, as `memex serve` has them).
  const keys = backend === 'flat' ? new KeyStore(dataDir, { recheckMs: 0 }) : memex.keys;
  const alice = { authorization: `Bearer ${(await keys.create('alice', 'test')).key}` };
  const bob = { authorization: `Bearer ${(await keys.create('bob', 'test')).key}` };
  const app = await buildApp(memex, { keys, ...appOptions });
  return {
    app,
    memex,
    dataDir,
    keys,
    alice,
    bob,
    close: async () => {
      await app.close();
      await memex.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The body of a JSON answer, after checking its status. */
export function body<T = Record<string, unknown>>(response: LightMyRequestResponse, status: number): T {
  expect(response.statusCode, response.body).toBe(status);
  return response.json<T>();
}

/** Checks an answer is a problem+json error with this status and code (never a stack trace). */
export function expectProblem(response: LightMyRequestResponse, status: number, code: string): void {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  const problem = response.json<{ code: string; status: number; hint: string; requestId: string }>();
  expect(problem.code).toBe(code);
  expect(problem.status).toBe(status);
  expect(problem.hint.length).toBeGreaterThan(0);
  expect(response.body).not.toMatch(/\s+at .+\(.+:\d+:\d+\)/);
}

/** A multipart/form-data body with text fields first and one file part last. */
export function multipart(file: { name: string; bytes: Uint8Array; field?: string }, fields: Record<string, string> = {}): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----memex${Math.random().toString(16).slice(2)}`;
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(fields)) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  }
  parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${file.field ?? 'file'}"; filename="${file.name}"\r\nContent-Type: application/octet-stream\r\n\r\n`));
  parts.push(Buffer.from(file.bytes));
  parts.push(Buffer.from(`\r\n--${boundary}--\r\n`));
  return { payload: Buffer.concat(parts), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

/** Polls a job until it ends. */
export async function waitForJob(app: App, headers: Record<string, string>, jobId: string, timeoutMs = 120_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = body<{ state: string }>(await app.inject({ url: `/v1/jobs/${jobId}`, headers }), 200);
    if (!['queued', 'running'].includes(job.state)) return job;
    if (Date.now() > deadline) throw new Error(`job ${jobId} still ${job.state}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const BIN = fileURLToPath(new URL('../../bin/memex.js', import.meta.url));

/** `memex serve` as users run it, in a child process (needs `npm run build`); resolves once it listens. */
export function startServer(dataDir: string, env: Record<string, string> = {}): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data-dir', dataDir, '--log-level', 'silent'], {
      env: { ...process.env, MEMEX_DATA_DIR: '', MEMEX_CONFIG: '', ...modelEnv, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (data: Buffer) => {
      stderr += data.toString();
      const url = /listening on (http:\/\/[\d.]+:\d+)/.exec(stderr)?.[1];
      if (url) resolve({ child, url, stderr: () => stderr });
    });
    child.on('exit', (code) => reject(new Error(`memex serve exited with ${code}: ${stderr}`)));
  });
}

/** Resolves once the child has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
}
