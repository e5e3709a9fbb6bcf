import { describe, expect, it } from 'vitest';
import type { Chunk, Message } from '../../src/core/index.js';
import type { Store } from '../../src/store/index.js';
import { expectCode } from '../helpers/errors.js';

export const DIM = 4;

export interface VectorHarness {
  /** A fresh, empty store; `reopen` closes it and opens another over the same data. */
  open: () => Promise<{ store: Store; reopen: () => Promise<Store> }>;
  /** Backend checks after a write: the flat files check that both files agree. */
  consistent?: (sessionId: string, rows: number) => Promise<void>;
  sessionGone?: (sessionId: string) => Promise<void>;
  filesGone?: (sessionId: string) => Promise<void>;
}

/** A fake embedding for store tests, named as one: a vector derived from the text's characters. */
export function fakeVector(text: string): Float32Array {
  const v = new Float32Array(DIM);
  for (let i = 0; i < text.length; i++) v[i % DIM] = (v[i % DIM] as number) + text.charCodeAt(i) / 1000;
  return v;
}

/** Chunks a message into `parts` equal pieces (a stand-in for the chunker, which has its own tests). */
export function chunksOf(message: Message, parts = 1): Chunk[] {
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

export function batch(chunks: Chunk[], model = 'test/fake') {
  return { model, chunks, vectors: chunks.map((c) => fakeVector(c.text)) };
}

/** A session's vector rows, the same on every backend. */
export function describeVectorConformance(name: string, harness: VectorHarness): void {
  async function setup() {
    const { store, reopen } = await harness.open();
    await store.createUser({ id: 'alice' });
    const session = await store.createSession('alice');
    return { store, sessionId: session.id, reopen };
  }

  describe(`vector rows: ${name}`, () => {
  it('adds rows after the last embedded message and reports what is left to embed', async () => {
    const { store, sessionId } = await setup();
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
    await harness.consistent?.(sessionId, 2);
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

  it('refuses a row with a value that is not a finite number and a chunk whose token count is not a count, writing nothing', async () => {
    const { store, sessionId } = await setup();
    const [a] = await store.appendMessages('alice', sessionId, [{ role: 'user', content: 'a message' }]);
    const nan = Float32Array.from([0.5, Number.NaN, 0, 0]);
    await expectCode(store.appendVectors('alice', sessionId, { model: 'test/fake', chunks: chunksOf(a!), vectors: [nan] }), 'MEMEX_INVALID_INPUT');
    // Ingest counts a whole message's tokens after embedding it (UNCOUNTED, -1, until then): a count
    // that slipped through unfilled is refused here, not stored for a reader to drop the row.
    for (const tokens of [-1, 1.5]) {
      const chunks = chunksOf(a!).map((chunk) => ({ ...chunk, tokens }));
      await expectCode(store.appendVectors('alice', sessionId, batch(chunks)), 'MEMEX_INVALID_INPUT');
    }
    expect((await store.vectorStatus('alice', sessionId)).rows).toBe(0);
    expect(await store.unembeddedMessages('alice', sessionId)).toHaveLength(1);
    await expectCode(store.replaceVectors('alice', sessionId, { model: 'test/fake', chunks: chunksOf(a!), vectors: [nan] }), 'MEMEX_INVALID_INPUT');
    await store.appendVectors('alice', sessionId, batch(chunksOf(a!)));
    expect((await store.vectorStatus('alice', sessionId)).rows).toBe(1);
  });

  it('records the data dir model once; changing it needs replace', async () => {
    const { store, reopen } = await setup();
    expect(await store.getEmbeddingModel()).toBeNull();
    await store.setEmbeddingModel({ model: 'test/fake', dimension: DIM });
    await store.setEmbeddingModel({ model: 'test/fake', dimension: DIM });
    await expectCode(store.setEmbeddingModel({ model: 'other', dimension: 8 }), 'MEMEX_MODEL_MISMATCH');
    await store.setEmbeddingModel({ model: 'other', dimension: 8 }, { replace: true });
        expect(await (await reopen()).getEmbeddingModel()).toEqual({ model: 'other', dimension: 8 });
  });

  it('deleting a message removes its rows and keeps the others', async () => {
    const { store, sessionId } = await setup();
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
    await harness.consistent?.(sessionId, 2);
    const page = await store.listMessages('alice', sessionId);
    expect(page.messages.map((m) => m.content)).toEqual(['keep me', 'keep me too']);
    expect((await store.getSession('alice', sessionId)).messageCount).toBe(2);
    await expectCode(store.deleteMessage('alice', sessionId, messages[1]!.id), 'MEMEX_MESSAGE_NOT_FOUND');
    // Deleting the last message moves the "embedded up to" mark back without leaving a gap.
    await store.deleteMessage('alice', sessionId, messages[2]!.id);
    expect(await store.unembeddedMessages('alice', sessionId)).toEqual([]);
    expect((await store.getSession('alice', sessionId)).lastMessagePreview).toBe('keep me');
  });

  it('replacing a session\'s rows (a reindex) keeps only the new ones', async () => {
    const { store, sessionId } = await setup();
    const messages = await store.appendMessages('alice', sessionId, [
      { role: 'user', content: 'the old words' },
      { role: 'assistant', content: 'more old words' },
    ]);
    await store.appendVectors('alice', sessionId, batch(messages.flatMap((m) => chunksOf(m, 2))));
    await harness.consistent?.(sessionId, 4);
    await store.replaceVectors('alice', sessionId, batch(messages.map((m) => ({ ...chunksOf(m)[0]!, text: `new ${m.content}` }))));
    const data = await store.readVectors('alice', sessionId);
    expect(data.lines.map((l) => l.text)).toEqual(['new the old words', 'new more old words']);
    await harness.consistent?.(sessionId, 2);
  });

  it('deleting a session removes its vector rows with it', async () => {
    const { store, sessionId } = await setup();
    const [m] = await store.appendMessages('alice', sessionId, [{ role: 'user', content: 'hello' }]);
    await store.appendVectors('alice', sessionId, batch(chunksOf(m!)));
    await store.deleteSession('alice', sessionId);
    await harness.sessionGone?.(sessionId);
    await expectCode(store.vectorStatus('alice', sessionId), 'MEMEX_SESSION_NOT_FOUND');
  });

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
    const { store, sessionId } = await setup();
    const { file } = await store.putFile('alice', sessionId, { source: { bytes: new TextEncoder().encode('%PDF-1.4 not really') }, name: 'a.pdf' });
    const [message] = await store.appendMessages('alice', sessionId, [{ role: 'user', content: 'see the attached file' }]);
    await store.appendVectors('alice', sessionId, batch(chunksOf(message as Message)));
    const stranger = 'f'.repeat(64);
    await store.appendVectors('alice', sessionId, batch([...fileChunks(file.id, 1, 3), ...fileChunks(stranger, 1, 2)]));
    expect((await store.vectorStatus('alice', sessionId)).rows).toBe(4);
    // A retried batch adds nothing.
    await store.appendVectors('alice', sessionId, batch(fileChunks(file.id, 1, 3)));
    expect((await store.vectorStatus('alice', sessionId)).rows).toBe(4);
    await harness.consistent?.(sessionId, 4);

    await store.writeFileArtifact('alice', sessionId, file.id, 'thumb.webp', new Uint8Array([1, 2, 3]));
    expect([...(await store.readFileArtifact('alice', sessionId, file.id, 'thumb.webp'))]).toEqual([1, 2, 3]);
    await expectCode(store.readFileArtifact('alice', sessionId, file.id, 'display.webp'), 'MEMEX_FILE_NOT_FOUND');
    await expectCode(store.writeFileArtifact('alice', sessionId, stranger, 'thumb.webp', 'x'), 'MEMEX_FILE_NOT_FOUND');
    await expectCode(store.readFileArtifact('alice', sessionId, file.id, '../x' as 'thumb.webp'), 'MEMEX_INVALID_INPUT');

    await store.deleteFile('alice', sessionId, file.id);
    expect((await store.vectorStatus('alice', sessionId)).rows).toBe(1);
    await harness.consistent?.(sessionId, 1);
    expect(await store.listFiles('alice', sessionId)).toEqual([]);
    await harness.filesGone?.(sessionId);
    await expectCode(store.deleteFile('alice', sessionId, file.id), 'MEMEX_FILE_NOT_FOUND');
  });
  });
}
