import { once } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { HASHED_MODEL } from '../../src/core/index.js';
import { HashedEmbedder } from '../../src/embedding/index.js';
import { FlatFileStore, KeyStore } from '../../src/store/index.js';
import { hasSharedModel, SHARED_MODEL_ID } from '../helpers/model.js';
import { snapshot } from '../store/migrate-helpers.js';
import { json, memex, spawnMemex } from '../helpers/cli.js';
import { refusedUrl, resetMemexSchema, startTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';

const running = new Set<ChildProcessWithoutNullStreams>();
afterEach(async () => {
  for (const child of running) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
  running.clear();
});

const MODEL = hasSharedModel ? { model: SHARED_MODEL_ID, dimension: 512 } : { model: HASHED_MODEL, dimension: new HashedEmbedder().dimension };

interface Summary {
  users: number;
  sessions: number;
  messages: number;
  files: number;
  vectorRows: number;
  rowsPerSecond: number;
  verification: { ok: boolean; sessions: number } | null;
  written: { messages: number; vectorRows: number; sessions: number; files: number };
  keys: { copied: number; total: number };
}

/** Two keys of alice in the data dir, one of them revoked: the live one, and the revoked one. */
async function keysOf(dataDir: string): Promise<{ live: string; revoked: string }> {
  const keys = new KeyStore(dataDir);
  const live = await keys.create('alice', 'laptop');
  const revoked = await keys.create('alice', 'old phone');
  await keys.revoke(revoked.info.id);
  return { live: live.key, revoked: revoked.key };
}

/** The error a failed `--json` run printed on stderr, and its exit code. */
async function failure(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ exit: number; code: string; details: Record<string, unknown> }> {
  const run = await memex([...args, '--json'], { env });
  const { error } = JSON.parse(run.stderr) as { error: { code: string; details: Record<string, unknown> } };
  return { exit: run.code, code: error.code, details: error.details };
}

/** A data dir made in-process (faster than CLI children): a user, a session of two messages and their rows. */
async function source(): Promise<{ dir: string; dataDir: string; session: string }> {
  const dir = await tempDir();
  const dataDir = join(dir, 'data');
  const store = await FlatFileStore.open({ dataDir });
  try {
    await store.createUser({ id: 'alice' });
    const { id } = await store.createSession('alice', { title: 'Moving' });
    const messages = await store.appendMessages('alice', id, [
      { role: 'user', content: 'I moved to Lisbon in May' },
      { role: 'assistant', content: 'Congratulations on the move!' },
    ]);
    // Rows made up by the test, recorded as the configured model's so the CLI's other commands open
    // the copy: the CLI copies them bit for bit, it never embeds.
    const chunks = messages.map((m) => ({
      chunkId: `${m.id}:0`,
      source: { kind: 'message' as const, messageId: m.id, role: m.role, createdAt: m.createdAt },
      part: { index: 0, count: 1 },
      span: { start: 0, end: m.content.length },
      text: m.content,
      tokens: 6,
    }));
    await store.appendVectors('alice', id, { model: MODEL.model, chunks, vectors: chunks.map((_, i) => Float32Array.from({ length: MODEL.dimension }, (_, j) => Math.cos(i + j))) });
    return { dir, dataDir, session: id };
  } finally {
    await store.close();
  }
}

async function startServer(dataDir: string): Promise<void> {
  const child = spawnMemex(['serve', '--port', '0', '--log-level', 'silent'], { env: { MEMEX_DATA_DIR: dataDir } });
  running.add(child);
  let stderr = '';
  child.stdout.resume();
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('listening on')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`memex serve exited with ${code}: ${stderr}`)));
  });
}

describe('memex migrate', () => {
  it('copies a data dir into another with --to-dir, says what it did with --json, and a second run writes nothing', async () => {
    const { dir, dataDir, session } = await source();
    const target = join(dir, 'copy');
    const keys = await keysOf(dataDir);
    const first = await json<Summary>(['--data-dir', dataDir, 'migrate', '--to-dir', target]);
    expect(first).toMatchObject({ users: 1, sessions: 1, messages: 2, files: 0, verification: { ok: true, sessions: 1 }, written: { messages: 2 } });
    // The API keys came along (they were left behind before): the same key works on the copy.
    expect(first.keys).toEqual({ copied: 2, total: 2 });
    expect(await new KeyStore(target).verify(keys.live)).toMatchObject({ userId: 'alice' });
    expect(await new KeyStore(target).verify(keys.revoked)).toBeNull();
    expect(first).toMatchObject({ vectorRows: 2, written: { vectorRows: 2 } });
    expect(typeof first.rowsPerSecond).toBe('number');
    const copied = await json<{ messages: { id: string; content: string; createdAt: string }[] }>(['--data-dir', target, '--user', 'alice', 'messages', '-s', session]);
    const original = await json<{ messages: { id: string; content: string; createdAt: string }[] }>(['--data-dir', dataDir, '--user', 'alice', 'messages', '-s', session]);
    expect(copied.messages).toEqual(original.messages);
    const again = await json<Summary>(['--data-dir', dataDir, 'migrate', '--to-dir', target]);
    expect(again.written).toMatchObject({ messages: 0, vectorRows: 0, sessions: 0, files: 0 });
    expect(again.keys).toEqual({ copied: 0, total: 2 });
    const human = await memex(['--data-dir', dataDir, 'migrate', '--to-dir', target]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/Migrated data dir .* 1 users, 1 sessions, 2 messages/);
    expect(human.stdout).toContain('Verified: 1 sessions identical');
  });

  it('an archived session is copied and stays archived, with the same content (it was refused before)', async () => {
    const { dir, dataDir, session } = await source();
    const store = await FlatFileStore.open({ dataDir });
    await store.archiveSession('alice', session).finally(() => store.close());
    const target = join(dir, 'copy');
    const first = await json<Summary>(['--data-dir', dataDir, 'migrate', '--to-dir', target]);
    expect(first).toMatchObject({ sessions: 1, messages: 2, vectorRows: 2, verification: { ok: true, sessions: 1 } });
    const [a, b] = [await FlatFileStore.open({ dataDir }), await FlatFileStore.open({ dataDir: target })];
    try {
      expect(await snapshot(b)).toEqual(await snapshot(a));
      expect((await b.getSession('alice', session)).archivedAt).not.toBeNull();
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('killed mid-way (SIGKILL), then run again: the copy is whole and identical', async () => {
    const dir = await tempDir();
    const dataDir = join(dir, 'data');
    const store = await FlatFileStore.open({ dataDir, fsync: 'none' });
    await store.createUser({ id: 'alice' });
    for (let s = 0; s < 60; s++) {
      const { id } = await store.createSession('alice', { title: `chat ${s}` });
      await store.appendMessages('alice', id, Array.from({ length: 150 }, (_, i) => ({ role: i % 2 ? ('assistant' as const) : ('user' as const), content: `session ${s} turn ${i}`, metadata: { i } })));
    }
    const original = await snapshot(store);
    await store.close();
    const target = join(dir, 'copy');
    const child = spawnMemex(['--data-dir', dataDir, 'migrate', '--to-dir', target, '--json']);
    running.add(child);
    child.stdout.resume();
    child.stderr.resume();
    // Killed once a few sessions are in the target (a whole run, should it win the race, only weakens the test).
    const sessionsThere = join(target, 'users', 'alice', 'sessions');
    while (child.exitCode === null && (!existsSync(sessionsThere) || readdirSync(sessionsThere).length < 5)) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGKILL');
    await once(child, 'exit').catch(() => undefined);
    const rest = await json<Summary>(['--data-dir', dataDir, 'migrate', '--to-dir', target]);
    expect(rest).toMatchObject({ sessions: 60, messages: 9000, verification: { ok: true } });
    const copy = await FlatFileStore.open({ dataDir: target });
    try {
      expect(await snapshot(copy)).toEqual(original);
    } finally {
      await copy.close();
    }
  });

  it('prints its help', async () => {
    const help = await memex(['migrate', '--help']);
    expect(help.code).toBe(0);
    for (const flag of ['--to <url>', '--from <url>', '--to-dir <dir>', '--no-verify']) expect(help.stdout).toContain(flag);
  });

  it('refuses bad usage and bad URLs with coded errors', async () => {
    const { dir, dataDir } = await source();
    expect(await failure(['--data-dir', dataDir, 'migrate'])).toMatchObject({ exit: 2, code: 'MEMEX_USAGE' });
    expect(await failure(['--data-dir', dataDir, 'migrate', '--to', 'postgres://h/db', '--to-dir', join(dir, 'x')])).toMatchObject({ exit: 2, code: 'MEMEX_USAGE' });
    expect(await failure(['--data-dir', dataDir, 'migrate', '--to', 'mysql://h/db'])).toMatchObject({ exit: 1, code: 'MEMEX_CONFIG_INVALID' });
    expect(await failure(['--data-dir', dataDir, 'migrate', '--to', await refusedUrl()])).toMatchObject({ exit: 1, code: 'MEMEX_DATABASE_UNAVAILABLE' });
    expect(await failure(['--data-dir', join(dir, 'x'), 'migrate', '--from', 'http://h/db', '--to-dir', join(dir, 'y')])).toMatchObject({ code: 'MEMEX_CONFIG_INVALID' });
    expect(await failure(['--data-dir', join(dir, 'missing'), 'migrate', '--to-dir', join(dir, 'y')])).toMatchObject({ code: 'MEMEX_DATA_DIR_INVALID' });
  });

  it('refuses a target whose vectors are of another model, naming reindex', async () => {
    const { dir, dataDir } = await source();
    const target = join(dir, 'other');
    const store = await FlatFileStore.open({ dataDir: target });
    await store.setEmbeddingModel({ model: 'some/other-model', dimension: 3 });
    await store.close();
    const run = await memex(['--data-dir', dataDir, 'migrate', '--to-dir', target]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('MEMEX_MODEL_MISMATCH');
    expect(run.stderr).toContain('memex reindex');
  });

  it('refuses a data dir a memex serve owns, as source or as target, naming the server', async () => {
    const { dir, dataDir } = await source();
    const env = { MEMEX_LOCK_TIMEOUT_MS: '200' };
    await startServer(dataDir);
    const asSource = await failure(['--data-dir', dataDir, 'migrate', '--to-dir', join(dir, 'copy')], env);
    expect(asSource).toMatchObject({ code: 'MEMEX_DATA_DIR_LOCKED', details: { dataDir } });
    expect(asSource.details.pid).toEqual(expect.any(Number));
    const other = join(dir, 'other');
    await json(['--data-dir', other, 'user', 'add', 'bob']);
    expect(await failure(['--data-dir', other, 'migrate', '--to-dir', dataDir], env)).toMatchObject({ code: 'MEMEX_DATA_DIR_LOCKED' });
  });
});

describe('memex migrate with PostgreSQL', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await startTestDatabase();
    await resetMemexSchema(database.url);
  }, 60_000);
  afterAll(async () => {
    await database?.stop();
  });

  it('copies a data dir into the database with --to and back with --from … --to-dir: the same messages', async () => {
    const { dir, dataDir, session } = await source();
    const keys = await keysOf(dataDir);
    const there = await json<Summary>(['--data-dir', dataDir, 'migrate', '--to', database.url]);
    expect(there).toMatchObject({ users: 1, sessions: 1, messages: 2, vectorRows: 2, verification: { ok: true }, written: { messages: 2, vectorRows: 2 }, keys: { copied: 2, total: 2 } });
    const back = join(dir, 'back');
    const returned = await json<Summary>(['migrate', '--from', database.url, '--to-dir', back]);
    expect(returned).toMatchObject({ messages: 2, vectorRows: 2, verification: { ok: true }, keys: { copied: 2, total: 2 } });
    // Through the database and back, the keys are the same keys.
    expect(await new KeyStore(back).verify(keys.live)).toMatchObject({ userId: 'alice' });
    expect(await new KeyStore(back).verify(keys.revoked)).toBeNull();
    type Page = { messages: { id: string; role: string; content: string; createdAt: string; metadata: unknown }[] };
    const original = await json<Page>(['--data-dir', dataDir, '--user', 'alice', 'messages', '-s', session]);
    expect((await json<Page>(['--data-dir', back, '--user', 'alice', 'messages', '-s', session])).messages).toEqual(original.messages);
    // The database named by MEMEX_DATABASE_URL is the source when --from is left out.
    const again = await json<Summary>(['migrate', '--to-dir', back], { env: { MEMEX_DATABASE_URL: database.url } });
    expect(again.written).toMatchObject({ messages: 0, vectorRows: 0 });
  });
});
