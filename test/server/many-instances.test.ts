import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, json } from '../helpers/cli.js';
import { modelEnv } from '../helpers/model.js';
import { resetMemexSchema, startTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { exited, multipart } from './setup.js';

/**
 * Two `memex serve` processes on one database (PGlite served by this test process, which every
 * child reaches over the wire protocol): keys, ingest jobs and data are the database's, so either
 * server answers for both. Needs `npm run build`.
 */
interface Instance {
  child: ChildProcess;
  url: string;
  stderr: () => string;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A job's row, read as the superuser (past row-level security) in the simple query protocol: a
 * server killed in the middle of an extended-protocol exchange can leave PGlite's one shared
 * session without the unnamed statement another connection's Parse/Bind expects (a limit of the
 * PGlite socket multiplexer, not of PostgreSQL), and one message per query is never split.
 */
function jobRow(jobId: string): string {
  if (!/^job_[0-9a-z]+$/.test(jobId)) throw new Error(`not a job id: ${jobId}`);
  return `SELECT state, claimed_by, attempts FROM memex.ingest_jobs WHERE id = '${jobId}'`;
}

describe('two memex serve processes on one PostgreSQL', () => {
  let database: TestDatabase;
  let root: string;
  let env: NodeJS.ProcessEnv;
  let admin: pg.Client;
  const instances: Instance[] = [];
  let alice = '';
  let rootKey = '';

  function start(name: string): Promise<Instance> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data-dir', join(root, name), '--database-url', database.url, '--log-level', 'silent'], {
        env: { ...env },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr?.on('data', (data: Buffer) => {
        stderr += data.toString();
        const url = /listening on (http:\/\/[\d.]+:\d+)/.exec(stderr)?.[1];
        if (url) resolve({ child, url, stderr: () => stderr });
      });
      child.on('exit', (code) => reject(new Error(`memex serve exited with ${code}: ${stderr}`)));
    });
  }

  const call = async (instance: Instance, path: string, key: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> => {
    const response = await fetch(`${instance.url}${path}`, { ...init, headers: { authorization: `Bearer ${key}`, ...(init.headers as Record<string, string> | undefined) } });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };

  async function upload(instance: Instance, sessionId: string, name: string, text: string): Promise<string> {
    const form = multipart({ name, bytes: Buffer.from(text) });
    const answer = await call(instance, `/v1/sessions/${sessionId}/files`, alice, { method: 'POST', headers: form.headers, body: form.payload });
    expect(answer.status, JSON.stringify(answer.body)).toBe(202);
    return (answer.body.job as { id: string }).id;
  }

  async function ended(instance: Instance, jobId: string, timeoutMs = 120_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { status, body } = await call(instance, `/v1/jobs/${jobId}`, alice);
      // 503 while the database recovers from the killed server's connections (see the SIGKILL test).
      if (status !== 503 && body.state !== 'queued' && body.state !== 'running') return body;
      if (Date.now() > deadline) throw new Error(`job ${jobId} still ${String(body.state)}`);
      await sleep(100);
    }
  }

  beforeAll(async () => {
    database = await startTestDatabase();
    await resetMemexSchema(database.url);
    root = await mkdtemp(join(tmpdir(), 'memex-instances-'));
    // A short staleness, so the SIGKILL test waits seconds rather than the default 15 s.
    const config = join(root, 'memex.config.json');
    await writeFile(config, JSON.stringify({ server: { jobs: { heartbeatMs: 200, staleMs: 2000 } } }));
    env = { ...process.env, MEMEX_DATA_DIR: '', MEMEX_DATABASE_URL: '', MEMEX_CONFIG: config, ...modelEnv };
    // Keys made by the CLI on the database before any server runs (no first-start key then).
    const cli = { cwd: root, env: { MEMEX_CONFIG: config, ...modelEnv } };
    alice = (await json<{ key: string }>(['keys', 'create', '--user', 'alice', '--database-url', database.url], cli)).key;
    rootKey = (await json<{ key: string }>(['keys', 'create', '--user', 'root', '--admin', '--database-url', database.url], cli)).key;
    // One after the other: the first migrates the empty database.
    instances.push(await start('a'));
    instances.push(await start('b'));
    admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
  }, 120_000);

  afterAll(async () => {
    for (const { child } of instances) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited(child);
    }
    await admin?.end();
    await database?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('a key revoked through one server (deleting its user) or the CLI is refused by the other within a second', { timeout: 60_000 }, async () => {
    const [a, b] = instances as [Instance, Instance];
    const cli = { cwd: root, env: { MEMEX_CONFIG: join(root, 'memex.config.json'), ...modelEnv } };
    const carol = await json<{ key: string; id: string }>(['keys', 'create', '--user', 'carol', '--database-url', database.url], cli);
    const dave = await json<{ key: string; id: string }>(['keys', 'create', '--user', 'dave', '--database-url', database.url], cli);
    for (const instance of [a, b]) for (const key of [carol.key, dave.key]) expect((await call(instance, '/v1/me', key)).status).toBe(200);

    expect((await call(a, '/v1/users/carol', rootKey, { method: 'DELETE' })).status).toBe(204);
    await json(['keys', 'revoke', dave.id, '--database-url', database.url], cli);
    await sleep(1050);
    for (const instance of [a, b]) {
      expect((await call(instance, '/v1/me', carol.key)).body.code).toBe('MEMEX_UNAUTHORIZED');
      expect((await call(instance, '/v1/me', dave.key)).body.code).toBe('MEMEX_UNAUTHORIZED');
    }
  });

  it('a message written through one server is listed and found through the other', { timeout: 60_000 }, async () => {
    const [a, b] = instances as [Instance, Instance];
    const session = (await call(a, '/v1/sessions', alice, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"title":"shared"}' })).body.id as string;
    const written = await call(a, `/v1/sessions/${session}/messages`, alice, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ role: 'user', content: 'the lighthouse keeper feeds three grey cats' }) });
    expect(written.status).toBe(201);
    const listed = await call(b, `/v1/sessions/${session}/messages`, alice);
    expect((listed.body.messages as { content: string }[]).map((m) => m.content)).toEqual(['the lighthouse keeper feeds three grey cats']);
  });

  it('ingest jobs accepted by either server each run exactly once while both are up', { timeout: 180_000 }, async () => {
    const [a, b] = instances as [Instance, Instance];
    const session = (await call(a, '/v1/sessions', alice, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).body.id as string;
    const jobs: string[] = [];
    for (let i = 0; i < 4; i++) {
      jobs.push(await upload(i % 2 ? b : a, session, `note-${i}.md`, `# Note ${i}\n\n${`Harbour log ${i}: the tide turned at noon and the ferry left late. `.repeat(40)}`));
    }
    for (const [i, jobId] of jobs.entries()) {
      // Followed through the server that did not accept it.
      const job = await ended(i % 2 ? a : b, jobId);
      expect(job, JSON.stringify(job)).toMatchObject({ state: 'done', result: { ingested: true } });
    }
    // Each was claimed once: every claim counts an attempt.
    for (const jobId of jobs) expect((await admin.query<{ attempts: number; state: string }>(jobRow(jobId))).rows[0]).toMatchObject({ attempts: 1, state: 'done' });
  });

  it('when the server running a job is killed (SIGKILL), the other takes the job over and completes it', { timeout: 180_000 }, async () => {
    const [a] = instances as [Instance, Instance];
    const session = (await call(a, '/v1/sessions', alice, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).body.id as string;
    // Long enough to be caught running: thousands of distinct sentences to chunk and embed.
    const text = Array.from({ length: 1500 }, (_, i) => `Entry ${i}: crate ${i * 7} of ${['salt', 'tin', 'wool', 'rope'][i % 4]} went to pier ${i % 13}.`).join(' ');
    const jobId = await upload(a, session, 'manifest.md', text);
    let claimedBy = '';
    for (let i = 0; i < 2000 && claimedBy === ''; i++) {
      const row = (await admin.query<{ state: string; claimed_by: string | null }>(jobRow(jobId))).rows[0];
      if (row?.state === 'running' && row.claimed_by) claimedBy = row.claimed_by;
      else if (row?.state !== 'queued') throw new Error(`the job ended before it could be caught running: ${JSON.stringify(row)}`);
      else await sleep(25);
    }
    const victim = instances.find((instance) => claimedBy.split(':')[1] === String(instance.child.pid));
    const survivor = instances.find((instance) => instance !== victim);
    expect(victim, `claimed by ${claimedBy}`).toBeDefined();
    victim!.child.kill('SIGKILL');
    await exited(victim!.child);

    const job = await ended(survivor!, jobId);
    expect(job, JSON.stringify(job)).toMatchObject({ state: 'done' });
    const row = (await admin.query<{ attempts: number; claimed_by: string }>(jobRow(jobId))).rows[0];
    expect(row?.attempts).toBe(2);
    expect(row?.claimed_by.split(':')[1]).toBe(String(survivor!.child.pid));
    // And what it ingested is there once: searching finds the file through the survivor.
    const found = await call(survivor!, '/v1/search', alice, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: 'crate of wool went to pier', k: 3 }) });
    expect(found.status, JSON.stringify(found.body)).toBe(200);
    expect((found.body.hits as { source: { kind: string } }[])[0]?.source.kind).toBe('file');
  });
});
