import { spawn } from 'node:child_process';
import { appendFile, readFile, readdir, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Chunk, Message } from '../../src/core/index.js';
import { FlatFileStore, parseNpyHeader, type StoreWarning } from '../../src/store/index.js';
import { expectCode } from '../helpers/errors.js';
import { tsxEval } from '../helpers/child.js';
import { tempDir } from '../helpers/tmp.js';

const DIM = 4;
const open: FlatFileStore[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

/** A fake embedding for store tests, named as one: a vector derived from the text's characters. */
function fakeVector(text: string): Float32Array {
  const v = new Float32Array(DIM);
  for (let i = 0; i < text.length; i++) v[i % DIM] = (v[i % DIM] as number) + text.charCodeAt(i) / 1000;
  return v;
}

/** Chunks a message into `parts` equal pieces (a stand-in for the chunker, which has its own tests). */
function chunksOf(message: Message, parts = 1): Chunk[] {
  const size = Math.ceil(message.content.length / parts);
  return Array.from({ length: parts }, (_, index) => {
    const start = index * size;
    const end = Math.min(message.content.length, start + size);
    return {
      chunkId: `${message.id}:${index}`,
      source: { kind: 'message', messageId: message.id, role: message.role, createdAt: message.createdAt },
      part: { index, count: parts },
      span: { start, end },
      text: message.content.slice(start, end),
      tokens: 1,
    } satisfies Chunk;
  });
}

function batch(chunks: Chunk[], model = 'test/fake') {
  return { model, chunks, vectors: chunks.map((c) => fakeVector(c.text)) };
}

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

describe('per-session vector files', () => {
  it('adds rows after the last embedded message and reports what is left to embed', async () => {
    const { store, sessionId, dir } = await setup();
    const messages = await store.appendMessages('alice', sessionId, [
      { role: 'user', content: 'first message' },
      { role: 'assistant', content: 'second message' },
      { role: 'user', content: 'third message' },
    ]);
    expect(await store.unembeddedMessages('alice', sessionId)).toHaveLength(3);
    await store.appendVectors('alice', sessionId, batch(messages.slice(0, 2).flatMap((m) => chunksOf(m))));
    expect((await store.unembeddedMessages('alice', sessionId)).map((m) => m.id)).toEqual([messages[2]!.id]);
    // A retried batch is skipped, not duplicated.
    const status = await store.appendVectors('alice', sessionId, batch(messages.slice(0, 2).flatMap((m) => chunksOf(m))));
    expect(status).toMatchObject({ rows: 2, model: 'test/fake', dimension: DIM, tail: `${messages[1]!.id}:0` });
    const data = await store.readVectors('alice', sessionId);
    expect(data.lines.map((l) => l.source.kind === 'message' && l.source.messageId)).toEqual([messages[0]!.id, messages[1]!.id]);
    expect([...data.vectors.subarray(DIM, 2 * DIM)]).toEqual([...fakeVector('second message')]);
    await expectConsistent(dir, 2);
  });

  it('reads rows from a given row, and single lines by row, matching a full read', async () => {
    const { store, sessionId, reopen } = await setup();
    const messages = await store.appendMessages('alice', sessionId, [
      { role: 'user', content: 'one ünïcödé line' },
      { role: 'assistant', content: 'two' },
      { role: 'user', content: 'three' },
    ]);
    await store.appendVectors('alice', sessionId, batch(messages.slice(0, 2).flatMap((m) => chunksOf(m))));
    await store.appendVectors('alice', sessionId, batch(messages.slice(2).flatMap((m) => chunksOf(m))));
    const all = await store.readVectors('alice', sessionId);
    const tail = await store.readVectors('alice', sessionId, { from: 1 });
    expect(tail.from).toBe(1);
    expect(tail.lines).toEqual(all.lines.slice(1));
    expect([...tail.vectors]).toEqual([...all.vectors.subarray(DIM)]);
    expect((await store.readVectors('alice', sessionId, { from: 3 })).lines).toEqual([]);
    expect(await store.readVectorLines('alice', sessionId, [2, 0])).toEqual([all.lines[2], all.lines[0]]);
    await expectCode(store.readVectorLines('alice', sessionId, [3]), 'MEMEX_INVALID_INPUT');
    // The same after a reopen, where the offsets come from parsing the file instead of from appends.
    await closeStore(store);
    const again = await reopen();
    expect(await again.readVectorLines('alice', sessionId, [1])).toEqual([all.lines[1]]);
    expect((await again.vectorStatus('alice', sessionId)).tail).toBe(`${messages[2]!.id}:0`);
  });

  it('refuses rows of another model or dimension in the same session', async () => {
    const { store, sessionId } = await setup();
    const [a, b] = await store.appendMessages('alice', sessionId, [
      { role: 'user', content: 'a' },
      { role: 'user', content: 'b' },
    ]);
    await store.appendVectors('alice', sessionId, batch(chunksOf(a!)));
    await expectCode(store.appendVectors('alice', sessionId, batch(chunksOf(b!), 'other/model')), 'MEMEX_MODEL_MISMATCH');
    await expectCode(
      store.appendVectors('alice', sessionId, { model: 'test/fake', chunks: chunksOf(b!), vectors: [new Float32Array(DIM + 1)] }),
      'MEMEX_MODEL_MISMATCH',
    );
    await expectCode(store.appendVectors('alice', sessionId, { model: 'test/fake', chunks: chunksOf(b!), vectors: [] }), 'MEMEX_INVALID_INPUT');
  });

  it('records the data dir model once; changing it needs replace', async () => {
    const { store, reopen } = await setup();
    expect(await store.getEmbeddingModel()).toBeNull();
    await store.setEmbeddingModel({ model: 'test/fake', dimension: DIM });
    await store.setEmbeddingModel({ model: 'test/fake', dimension: DIM });
    await expectCode(store.setEmbeddingModel({ model: 'other', dimension: 8 }), 'MEMEX_MODEL_MISMATCH');
    await store.setEmbeddingModel({ model: 'other', dimension: 8 }, { replace: true });
    await closeStore(store);
    expect(await (await reopen()).getEmbeddingModel()).toEqual({ model: 'other', dimension: 8 });
  });

  it('deleting a message removes its rows and keeps the others', async () => {
    const { store, sessionId, dir } = await setup();
    const messages = await store.appendMessages('alice', sessionId, [
      { role: 'user', content: 'keep me' },
      { role: 'assistant', content: 'delete me, I have three chunks' },
      { role: 'user', content: 'keep me too' },
    ]);
    await store.appendVectors('alice', sessionId, batch([...chunksOf(messages[0]!), ...chunksOf(messages[1]!, 3), ...chunksOf(messages[2]!)]));
    await store.deleteMessage('alice', sessionId, messages[1]!.id);
    const data = await store.readVectors('alice', sessionId);
    expect(data.lines.map((l) => l.text)).toEqual(['keep me', 'keep me too']);
    expect([...data.vectors.subarray(DIM, 2 * DIM)]).toEqual([...fakeVector('keep me too')]);
    expect(data.lines.map((l) => l.row)).toEqual([0, 1]);
    await expectConsistent(dir, 2);
    const page = await store.listMessages('alice', sessionId);
    expect(page.messages.map((m) => m.content)).toEqual(['keep me', 'keep me too']);
    expect((await store.getSession('alice', sessionId)).messageCount).toBe(2);
    await expectCode(store.deleteMessage('alice', sessionId, messages[1]!.id), 'MEMEX_MESSAGE_NOT_FOUND');
    // Deleting the last message moves the "embedded up to" mark back without leaving a gap.
    await store.deleteMessage('alice', sessionId, messages[2]!.id);
    expect(await store.unembeddedMessages('alice', sessionId)).toEqual([]);
    expect((await store.getSession('alice', sessionId)).lastMessagePreview).toBe('keep me');
  });

  it('deleting a session removes its vector files with it', async () => {
    const { store, sessionId, dir } = await setup();
    const [m] = await store.appendMessages('alice', sessionId, [{ role: 'user', content: 'hello' }]);
    await store.appendVectors('alice', sessionId, batch(chunksOf(m!)));
    await store.deleteSession('alice', sessionId);
    await expect(readdir(dir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

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

describe('file rows', () => {
  function fileChunks(fileId: string, page: number, count: number): Chunk[] {
    return Array.from({ length: count }, (_, index) => ({
      chunkId: `${fileId}:${page}:${index}`,
      source: { kind: 'file', fileId, page } as Chunk['source'],
      part: { index, count },
      span: { start: index * 10, end: index * 10 + 10 },
      text: `page ${page} part ${index} of ${fileId.slice(0, 6)}`,
      tokens: 4,
    }));
  }

  it('keeps rows only for files the session holds, once each; deleting a file removes its rows, artifacts and record', async () => {
    const { store, sessionId, dir } = await setup();
    const { file } = await store.putFile('alice', sessionId, { source: { bytes: new TextEncoder().encode('%PDF-1.4 not really') }, name: 'a.pdf' });
    const [message] = await store.appendMessages('alice', sessionId, [{ role: 'user', content: 'see the attached file' }]);
    await store.appendVectors('alice', sessionId, batch(chunksOf(message as Message)));
    const stranger = 'f'.repeat(64);
    await store.appendVectors('alice', sessionId, batch([...fileChunks(file.id, 1, 3), ...fileChunks(stranger, 1, 2)]));
    expect((await store.vectorStatus('alice', sessionId)).rows).toBe(4);
    // A retried batch adds nothing.
    await store.appendVectors('alice', sessionId, batch(fileChunks(file.id, 1, 3)));
    expect((await store.vectorStatus('alice', sessionId)).rows).toBe(4);
    await expectConsistent(dir, 4);

    await store.writeFileArtifact('alice', sessionId, file.id, 'thumb.webp', new Uint8Array([1, 2, 3]));
    expect([...(await store.readFileArtifact('alice', sessionId, file.id, 'thumb.webp'))]).toEqual([1, 2, 3]);
    await expectCode(store.readFileArtifact('alice', sessionId, file.id, 'display.webp'), 'MEMEX_FILE_NOT_FOUND');
    await expectCode(store.writeFileArtifact('alice', sessionId, stranger, 'thumb.webp', 'x'), 'MEMEX_FILE_NOT_FOUND');
    await expectCode(store.readFileArtifact('alice', sessionId, file.id, '../x' as 'thumb.webp'), 'MEMEX_INVALID_INPUT');

    await store.deleteFile('alice', sessionId, file.id);
    expect((await store.vectorStatus('alice', sessionId)).rows).toBe(1);
    await expectConsistent(dir, 1);
    expect(await store.listFiles('alice', sessionId)).toEqual([]);
    expect((await readdir(join(dir, 'files'))).filter((name) => !name.startsWith('.'))).toEqual([]);
    await expectCode(store.deleteFile('alice', sessionId, file.id), 'MEMEX_FILE_NOT_FOUND');
  });
});
