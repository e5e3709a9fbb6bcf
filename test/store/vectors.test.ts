import { spawn } from 'node:child_process';
import { appendFile, readFile, readdir, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FlatFileStore, parseNpyHeader, type StoreWarning } from '../../src/store/index.js';
import { tsxEval } from '../helpers/child.js';
import { tempDir } from '../helpers/tmp.js';
import { batch, chunksOf, describeVectorConformance, DIM } from './vector-conformance.js';

const open: FlatFileStore[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

async function setup(options: { warnings?: StoreWarning[] } = {}) {
  const dataDir = await tempDir();
  const reopen = async (): Promise<FlatFileStore> => {
    const store = await FlatFileStore.open({ dataDir, fsync: 'always', onWarning: (w) => options.warnings?.push(w) });
    open.push(store);
    return store;
  };
  const store = await reopen();
  await store.createUser({ id: 'alice' });
  const session = await store.createSession('alice');
  const dir = join(dataDir, 'users', 'alice', 'sessions', session.id);
  return { dataDir, store, sessionId: session.id, dir, reopen };
}

async function closeStore(store: FlatFileStore): Promise<void> {
  await store.close();
  open.splice(open.indexOf(store), 1);
}

/** Both files agree: one line per row, line i says row i, the header's shape matches the file. */
async function expectConsistent(dir: string, rows: number): Promise<void> {
  const lines = (await readFile(join(dir, 'vector_index.jsonl'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
  expect(lines).toHaveLength(rows);
  lines.forEach((line, i) => expect((JSON.parse(line) as { row: number }).row).toBe(i));
  if (rows === 0) return;
  const npy = await readFile(join(dir, 'embeddings.npy'));
  const shape = parseNpyHeader(npy);
  expect(shape).toMatchObject({ rows, dimension: DIM });
  expect(npy.length).toBe(128 + rows * DIM * 4);
}

/** The data dir of the conformance test running now. */
let conformanceDir = '';
const sessionDir = (sessionId: string): string => join(conformanceDir, 'users', 'alice', 'sessions', sessionId);

describeVectorConformance('flat files', {
  async open() {
    conformanceDir = await tempDir();
    const dataDir = conformanceDir;
    let store = await FlatFileStore.open({ dataDir, fsync: 'always' });
    open.push(store);
    const reopen = async (): Promise<FlatFileStore> => {
      await closeStore(store);
      store = await FlatFileStore.open({ dataDir, fsync: 'always' });
      open.push(store);
      return store;
    };
    return { store, reopen };
  },
  consistent: (sessionId, rows) => expectConsistent(sessionDir(sessionId), rows),
  sessionGone: async (sessionId) => {
    await expect(readdir(sessionDir(sessionId))).rejects.toMatchObject({ code: 'ENOENT' });
  },
  filesGone: async (sessionId) => {
    expect((await readdir(join(sessionDir(sessionId), 'files'))).filter((name) => !name.startsWith('.'))).toEqual([]);
  },
});

describe('per-session vector files', () => {
  describe('reconciles the two files on open', () => {
    async function embeddedSession(parts = 1) {
      const warnings: StoreWarning[] = [];
      const ctx = await setup({ warnings });
      const messages = await ctx.store.appendMessages('alice', ctx.sessionId, [
        { role: 'user', content: 'alpha one' },
        { role: 'assistant', content: 'beta two, a longer one' },
        { role: 'user', content: 'gamma three' },
      ]);
      await ctx.store.appendVectors('alice', ctx.sessionId, batch(messages.flatMap((m, i) => chunksOf(m, i === 2 ? parts : 1))));
      await closeStore(ctx.store);
      return { ...ctx, messages, warnings };
    }

    it('drops lines whose rows never reached embeddings.npy; their messages are embedded again', async () => {
      const { dir, reopen, sessionId, messages, warnings } = await embeddedSession();
      await truncate(join(dir, 'embeddings.npy'), 128 + 2 * DIM * 4 + 7);
      const store = await reopen();
      expect((await store.unembeddedMessages('alice', sessionId)).map((m) => m.id)).toEqual([messages[2]!.id]);
      expect(warnings).toContainEqual(expect.objectContaining({ kind: 'vectors-reconciled', rows: 2, droppedLines: 1 }));
      await expectConsistent(dir, 2);
    });

    it('drops rows that have no line', async () => {
      const { dir, reopen, sessionId } = await embeddedSession();
      await appendFile(join(dir, 'embeddings.npy'), Buffer.alloc(DIM * 4 * 2, 1));
      const store = await reopen();
      expect((await store.vectorStatus('alice', sessionId)).rows).toBe(3);
      await expectConsistent(dir, 3);
    });

    it('cuts a torn last line and keeps only whole messages', async () => {
      const { dir, reopen, sessionId, messages } = await embeddedSession(3);
      const index = join(dir, 'vector_index.jsonl');
      const text = await readFile(index, 'utf8');
      // Keep the first two chunks of message 3 and half of its third line: a torn append.
      const lines = text.split('\n').filter(Boolean);
      await writeFile(index, `${lines.slice(0, 4).join('\n')}\n${lines[4]!.slice(0, 20)}`);
      const store = await reopen();
      expect((await store.unembeddedMessages('alice', sessionId)).map((m) => m.id)).toEqual([messages[2]!.id]);
      await expectConsistent(dir, 2);
    });

    it('rebuilds from nothing when embeddings.npy is not an .npy file', async () => {
      const { dir, reopen, sessionId } = await embeddedSession();
      await writeFile(join(dir, 'embeddings.npy'), 'garbage');
      const store = await reopen();
      expect(await store.unembeddedMessages('alice', sessionId)).toHaveLength(3);
      expect((await store.vectorStatus('alice', sessionId)).rows).toBe(0);
    });
  });

  describe('survives SIGKILL at every step of a write', () => {
    const moduleUrl = new URL('../../src/store/index.ts', import.meta.url).href;

    /** Runs `body` in a child process with a failpoint armed; the child must die by SIGKILL there. */
    async function killedAt(failpoint: string, dataDir: string, body: string): Promise<void> {
      const child = spawn(
        process.execPath,
        tsxEval(`import { FlatFileStore } from ${JSON.stringify(moduleUrl)};
           const store = await FlatFileStore.open({ dataDir: ${JSON.stringify(dataDir)}, fsync: 'always', onWarning: () => {} });
           const vector = (text) => Float32Array.from({ length: ${DIM} }, (_, i) => text.length + i);
           const chunk = (m, text = m.content) => ({ chunkId: m.id + ':0', source: { kind: 'message', messageId: m.id, role: m.role, createdAt: m.createdAt }, part: { index: 0, count: 1 }, span: { start: 0, end: text.length }, text, tokens: 1 });
           ${body}
           process.exit(3);`),
        { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, MEMEX_FAILPOINT: failpoint } },
      );
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
      expect({ code, signal }).toEqual({ code: null, signal: 'SIGKILL' });
    }

    const appendBody = (sessionId: string): string => `
      const page = await store.listMessages('alice', '${sessionId}');
      const last = page.messages[2];
      await store.appendVectors('alice', '${sessionId}', { model: 'test/fake', chunks: [chunk(last)], vectors: [vector(last.content)] });`;
    const replaceBody = (sessionId: string): string => `
      const page = await store.listMessages('alice', '${sessionId}');
      await store.replaceVectors('alice', '${sessionId}', { model: 'test/fake', chunks: page.messages.map((m) => chunk(m, 'NEW ' + m.content)), vectors: page.messages.map(() => vector('renewed!')) });`;

    async function twoOfThreeEmbedded() {
      const ctx = await setup();
      const messages = await ctx.store.appendMessages('alice', ctx.sessionId, [
        { role: 'user', content: 'one' },
        { role: 'assistant', content: 'two' },
        { role: 'user', content: 'three' },
      ]);
      await ctx.store.appendVectors('alice', ctx.sessionId, batch(messages.slice(0, 2).flatMap((m) => chunksOf(m))));
      await closeStore(ctx.store);
      return { ...ctx, messages };
    }

    for (const failpoint of ['vectors:after-rows', 'vectors:after-lines']) {
      it(`while appending (${failpoint})`, async () => {
        const { dataDir, dir, reopen, sessionId, messages } = await twoOfThreeEmbedded();
        await killedAt(failpoint, dataDir, appendBody(sessionId));
        const store = await reopen();
        const status = await store.vectorStatus('alice', sessionId);
        // Rows written without their lines are dropped; lines written without the header update are kept.
        expect(status.rows).toBe(failpoint === 'vectors:after-rows' ? 2 : 3);
        await expectConsistent(dir, status.rows);
        const pending = await store.unembeddedMessages('alice', sessionId);
        expect(pending.map((m) => m.id)).toEqual(status.rows === 2 ? [messages[2]!.id] : []);
      });
    }

    for (const [failpoint, renewed] of [
      ['vectors:swap-written', false],
      ['vectors:swap-journaled', true],
      ['vectors:swap-half-renamed', true],
    ] as const) {
      it(`while replacing every row (${failpoint}): all old or all new, never a mix`, async () => {
        const { dataDir, dir, reopen, sessionId } = await twoOfThreeEmbedded();
        await killedAt(failpoint, dataDir, replaceBody(sessionId));
        const store = await reopen();
        const data = await store.readVectors('alice', sessionId);
        expect(data.lines.every((l) => l.text.startsWith('NEW ') === renewed)).toBe(true);
        expect(data.rows).toBe(renewed ? 3 : 2);
        await expectConsistent(dir, data.rows);
        expect((await readdir(dir)).filter((name) => name.includes('swap'))).toEqual([]);
      });
    }
  });
});
