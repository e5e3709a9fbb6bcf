import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HashedEmbedder, Memex, type Embedder, type MemexWarning, type ReindexProgress } from '../../src/index.js';
import { FlatFileStore } from '../../src/store/index.js';
import { HASHED_MODEL } from '../../src/core/index.js';
import { BACKENDS, backendConfig } from '../helpers/backends.js';
import { expectCode } from '../helpers/errors.js';
import { hasSharedModel, modelEnv, SHARED_MODEL_ID } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';
import { tsxEval } from '../helpers/child.js';

const opened: Memex[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((m) => m.close()));
});

async function openMemex(dataDir: string, options: Partial<Parameters<typeof Memex.open>[0]> = {}): Promise<Memex> {
  const memex = await Memex.open({ dataDir, env: modelEnv, ...options });
  opened.push(memex);
  return memex;
}

async function closeMemex(memex: Memex): Promise<void> {
  opened.splice(opened.indexOf(memex), 1);
  await memex.close();
}

/** A fake model for the model-switch tests, named as one: the hashed embedder under another id and size. */
class FakeOtherModel implements Embedder {
  readonly modelId = 'test/fake-other-model';
  readonly dimension = 8;
  readonly maxTokens = 512;
  calls = 0;
  countTokens(text: string): number {
    return text.split(/\s+/).length;
  }
  embed(texts: readonly string[]): Promise<Float32Array[]> {
    this.calls += 1;
    return Promise.resolve(texts.map((t) => Float32Array.from({ length: 8 }, (_, i) => (i === t.length % 8 ? 1 : 0))));
  }
}

describe('indexing on append', () => {
  it('embeds appended messages in the background; flush() waits for their rows', async () => {
    const dataDir = await tempDir();
    const memex = await openMemex(dataDir);
    const session = await memex.sessions.create('alice', {}).catch(async () => {
      await memex.users.create({ id: 'alice' });
      return memex.sessions.create('alice');
    });
    const long = Array.from({ length: 60 }, (_, i) => `Paragraph sentence ${i} is about the weekly planning meeting and its notes.`).join(' ');
    const written = await memex.messages.appendMany('alice', session.id, [
      { role: 'user', content: 'I adopted a golden retriever named Biscuit.' },
      { role: 'assistant', content: long },
      { role: 'user', content: 'We fly to Lisbon in May.' },
    ]);
    await memex.flush();
    const data = await memex.vectors.read('alice', session.id);
    const embedder = await memex.embedder();
    expect(data.model).toBe(embedder.modelId);
    expect(data.dimension).toBe(embedder.dimension);
    const byMessage = new Map<string, number>();
    for (const line of data.lines) {
      if (line.source.kind !== 'message') throw new Error('only message rows expected');
      byMessage.set(line.source.messageId, (byMessage.get(line.source.messageId) ?? 0) + 1);
      const message = written.find((m) => m.id === (line.source as { messageId: string }).messageId)!;
      // Provenance maps back to the exact source text.
      expect(message.content.slice(line.span.start, line.span.end)).toBe(line.text);
      expect(line.tokens).toBeLessThanOrEqual(embedder.maxTokens);
    }
    expect(byMessage.get(written[0]!.id)).toBe(1);
    expect(byMessage.get(written[1]!.id)).toBeGreaterThan(1);
    expect(byMessage.get(written[2]!.id)).toBe(1);
    const manifest = JSON.parse(await readFile(join(dataDir, 'memex.json'), 'utf8')) as { embedding: unknown };
    expect(manifest.embedding).toEqual({ model: embedder.modelId, dimension: embedder.dimension });
    if (hasSharedModel) expect(embedder.modelId).toBe(SHARED_MODEL_ID);
  });

  it('catches up on messages that were stored without rows (a crash before embedding)', async () => {
    const dataDir = await tempDir();
    const store = await FlatFileStore.open({ dataDir });
    await store.createUser({ id: 'alice' });
    const session = await store.createSession('alice');
    await store.appendMessages('alice', session.id, [
      { role: 'user', content: 'stored while the indexer was down' },
      { role: 'assistant', content: 'so was this' },
    ]);
    await store.close();
    const memex = await openMemex(dataDir);
    expect((await memex.vectors.status('alice', session.id)).rows).toBe(0);
    await memex.messages.append('alice', session.id, { role: 'user', content: 'and a new one' });
    await memex.flush();
    expect((await memex.vectors.read('alice', session.id)).lines.map((l) => l.text)).toEqual(['stored while the indexer was down', 'so was this', 'and a new one']);
  });

  it('after SIGKILL, acknowledged messages are in search before any new append (regression: 155 of 200 missing)', async () => {
    const dataDir = join(await tempDir(), 'data');
    const moduleUrl = new URL('../../src/index.ts', import.meta.url).href;
    // The child acknowledges 200 appends over 4 sessions, then is killed before its indexer can
    // have embedded them (the model is still loading).
    const child = spawn(
      process.execPath,
      tsxEval(`import { Memex } from ${JSON.stringify(moduleUrl)};
         const memex = await Memex.open({ dataDir: ${JSON.stringify(dataDir)}, env: ${JSON.stringify(modelEnv)}, onWarning: () => {} });
         await memex.users.create({ id: 'alice' });
         for (let s = 0; s < 4; s++) {
           const session = await memex.sessions.create('alice');
           for (let i = 0; i < 50; i++) await memex.messages.append('alice', session.id, { role: 'user', content: 'acknowledged note zq' + (s * 50 + i) });
         }
         process.stdout.write('acked\\n');
         setInterval(() => {}, 1000);`),
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('acked') && resolve());
      child.on('exit', (code) => reject(new Error(`child exited early with ${code}`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));

    const memex = await openMemex(dataDir, { onWarning: () => undefined });
    const report = await memex.search('alice', 'acknowledged note', { k: 200, mode: 'lexical' });
    expect(new Set(report.hits.map((hit) => hit.text))).toEqual(new Set(Array.from({ length: 200 }, (_, i) => `acknowledged note zq${i}`)));
    const sessions = (await memex.sessions.list('alice')).sessions;
    for (const session of sessions) expect((await memex.vectors.status('alice', session.id)).rows).toBe(50);
  }, 120_000);

  it('deleting a message through the facade removes its rows', async () => {
    const memex = await openMemex(await tempDir());
    await memex.users.create({ id: 'alice' });
    const session = await memex.sessions.create('alice');
    const [a, b] = await memex.messages.appendMany('alice', session.id, [
      { role: 'user', content: 'keep' },
      { role: 'user', content: 'forget this secret' },
    ]);
    await memex.flush();
    await memex.messages.delete('alice', session.id, b!.id);
    const data = await memex.vectors.read('alice', session.id);
    expect(data.lines.map((l) => l.source.kind === 'message' && l.source.messageId)).toEqual([a!.id]);
  });

  it('announces the hashed fallback once, however many messages it embeds', async () => {
    const warnings: MemexWarning[] = [];
    const memex = await openMemex(await tempDir(), { env: { MEMEX_MODEL_DIR: await tempDir(), MEMEX_MODEL: 'nobody/absent' }, onWarning: (w) => warnings.push(w) });
    await memex.users.create({ id: 'alice' });
    const session = await memex.sessions.create('alice');
    for (let i = 0; i < 5; i++) await memex.messages.append('alice', session.id, { role: 'user', content: `message ${i}` });
    await memex.flush();
    expect(warnings.filter((w) => w.kind === 'embedding-fallback')).toHaveLength(1);
    expect((await memex.vectors.status('alice', session.id)).rows).toBe(5);
  });
});

describe('model changes and reindex', () => {
  async function dirWithHashedVectors(sessions = 3) {
    const dataDir = await tempDir();
    const memex = await openMemex(dataDir, { embedder: new HashedEmbedder() });
    await memex.users.create({ id: 'alice' });
    await memex.users.create({ id: 'bob' });
    const ids: { userId: string; sessionId: string }[] = [];
    for (let i = 0; i < sessions; i++) {
      const userId = i % 2 === 0 ? 'alice' : 'bob';
      const session = await memex.sessions.create(userId);
      await memex.messages.appendMany(userId, session.id, [
        { role: 'user', content: `question ${i} about the garden` },
        { role: 'assistant', content: `answer ${i} about tomatoes` },
      ]);
      ids.push({ userId, sessionId: session.id });
    }
    await closeMemex(memex);
    return { dataDir, ids };
  }

  it.runIf(hasSharedModel)('a start on the fallback before any data does not pin the data dir to it (regression: the model was recorded on first load)', async () => {
    const dataDir = await tempDir();
    const offline = await openMemex(dataDir, { env: { ...modelEnv, MEMEX_MODEL_DIR: join(dataDir, 'no-models-here') }, onWarning: () => undefined });
    expect((await offline.embedder()).modelId).toBe(HASHED_MODEL);
    await offline.users.create({ id: 'alice' });
    await offline.sessions.create('alice');
    await closeMemex(offline);

    const online = await openMemex(dataDir);
    const [session] = (await online.sessions.list('alice')).sessions;
    await online.messages.append('alice', session!.id, { role: 'user', content: 'the first message, embedded by the real model' });
    await online.flush();
    expect((await online.vectors.status('alice', session!.id)).model).toBe(SHARED_MODEL_ID);
    expect(JSON.parse(await readFile(join(dataDir, 'memex.json'), 'utf8'))).toMatchObject({ embedding: { model: SHARED_MODEL_ID, dimension: 512 } });
  });

  it('refuses to open a data dir with another model, naming `memex reindex`', async () => {
    const { dataDir } = await dirWithHashedVectors(1);
    const other = new FakeOtherModel();
    let caught: unknown;
    await Memex.open({ dataDir, env: modelEnv, embedder: other }).catch((e: unknown) => (caught = e));
    expect(caught).toMatchObject({ code: 'MEMEX_MODEL_MISMATCH', details: { recorded: 'memex/hashed-lexical-v1', configured: 'test/fake-other-model' } });
    expect(String((caught as Error).message)).toContain('memex reindex');
    // The data dir is not left locked by the refused open.
    await closeMemex(await openMemex(dataDir, { embedder: new HashedEmbedder() }));
  });

  it('re-embeds every session with the new model, then records it', async () => {
    const { dataDir, ids } = await dirWithHashedVectors(3);
    const other = new FakeOtherModel();
    const memex = await openMemex(dataDir, { embedder: other, allowModelMismatch: true });
    const progress: ReindexProgress[] = [];
    const result = await memex.reindex({ onProgress: (p) => progress.push(p) });
    expect(result).toMatchObject({ model: 'test/fake-other-model', dimension: 8, sessionsTotal: 3, sessionsEmbedded: 3, sessionsSkipped: 0, messages: 6, chunks: 6 });
    expect(progress.at(-1)).toMatchObject({ sessionsDone: 3, sessionsTotal: 3 });
    for (const { userId, sessionId } of ids) expect(await memex.vectors.status(userId, sessionId)).toMatchObject({ rows: 2, model: 'test/fake-other-model', dimension: 8 });
    await closeMemex(memex);
    // Now the new model opens it without the flag, and the old one is refused.
    await closeMemex(await openMemex(dataDir, { embedder: new FakeOtherModel() }));
    await expectCode(Memex.open({ dataDir, env: modelEnv, embedder: new HashedEmbedder() }), 'MEMEX_MODEL_MISMATCH');
  });

  it('resumes an interrupted reindex where it stopped', async () => {
    const { dataDir } = await dirWithHashedVectors(4);
    const controller = new AbortController();
    const first = new FakeOtherModel();
    const memex = await openMemex(dataDir, { embedder: first, allowModelMismatch: true });
    await expectCode(
      memex.reindex({ signal: controller.signal, onProgress: (p) => p.sessionsDone === 2 && controller.abort() }),
      'MEMEX_ABORTED',
    );
    // Not switched yet: the recorded model changes only when every session is done.
    expect(JSON.parse(await readFile(join(dataDir, 'memex.json'), 'utf8'))).toMatchObject({ embedding: { model: 'memex/hashed-lexical-v1' } });
    await closeMemex(memex);
    const second = new FakeOtherModel();
    const again = await openMemex(dataDir, { embedder: second, allowModelMismatch: true });
    const result = await again.reindex();
    expect(result).toMatchObject({ sessionsTotal: 4, sessionsEmbedded: 2, sessionsSkipped: 2 });
    expect(second.calls).toBe(2);
  });

  it('with force, re-embeds current sessions too, and a rerun after an interruption skips the finished ones', async () => {
    const { dataDir } = await dirWithHashedVectors(4);
    const memex = await openMemex(dataDir, { embedder: new HashedEmbedder() });
    expect(await memex.reindex()).toMatchObject({ sessionsEmbedded: 0, sessionsSkipped: 4 });
    const controller = new AbortController();
    await expectCode(memex.reindex({ force: true, signal: controller.signal, onProgress: (p) => p.sessionsDone === 3 && controller.abort() }), 'MEMEX_ABORTED');
    const result = await memex.reindex({ force: true });
    expect(result).toMatchObject({ resumed: true, sessionsEmbedded: 1, sessionsSkipped: 3 });
    expect(await memex.reindex({ force: true })).toMatchObject({ resumed: false, sessionsEmbedded: 4 });
  });

  it('reindex catches up on text after an attachment-only message (regression: only the first pending message was checked)', async () => {
    const dataDir = await tempDir();
    const store = await FlatFileStore.open({ dataDir });
    await store.setEmbeddingModel({ model: 'memex/hashed-lexical-v1', dimension: 384 });
    await store.createUser({ id: 'alice' });
    const session = await store.createSession('alice');
    const { file } = await store.putFile('alice', session.id, { source: { bytes: Buffer.from('plain notes') }, name: 'notes.txt' });
    await store.appendMessages('alice', session.id, [
      { role: 'user', content: '', attachments: [{ fileId: file.id }] },
      { role: 'user', content: 'the text that still needs rows' },
    ]);
    await store.close();
    const memex = await openMemex(dataDir, { embedder: new HashedEmbedder() });
    expect(await memex.reindex()).toMatchObject({ sessionsEmbedded: 1 });
    expect((await memex.vectors.read('alice', session.id)).lines.map((l) => l.text)).toEqual(['the text that still needs rows']);
  });

  it('refuses to switch models for one user only', async () => {
    const { dataDir } = await dirWithHashedVectors(2);
    const memex = await openMemex(dataDir, { embedder: new FakeOtherModel(), allowModelMismatch: true });
    await expectCode(memex.reindex({ userId: 'alice' }), 'MEMEX_INVALID_INPUT');
  });
});

/** A FAKE model for the queue test: the hashed embedder, except that a batch holding "HOLD" waits for its turn to be released. */
class GatedEmbedder implements Embedder {
  private readonly inner = new HashedEmbedder();
  readonly modelId = this.inner.modelId;
  readonly dimension = this.inner.dimension;
  readonly maxTokens = this.inner.maxTokens;
  private readonly gates: (() => void)[] = [];
  private open = false;
  held = 0;
  countTokens(text: string): number {
    return this.inner.countTokens(text);
  }
  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    if (!this.open && texts.some((text) => text.includes('HOLD'))) {
      this.held++;
      await new Promise<void>((resolve) => this.gates.push(resolve));
    }
    return this.inner.embed(texts);
  }
  release(): void {
    this.gates.shift()?.();
  }
  /** Releases every held call, and holds no more. */
  releaseAll(): void {
    this.open = true;
    while (this.gates.length > 0) this.release();
  }
}

describe.each(BACKENDS)('the embedding queue on %s', (backend) => {
  it("a user's search waits for its own appends, not for another user's queued sessions (regression: every search waited for the whole queue)", async () => {
    const dataDir = await tempDir();
    const embedder = new GatedEmbedder();
    const memex = await openMemex(dataDir, { embedder, env: {}, config: await backendConfig(backend, dataDir) });
    await memex.users.create({ id: 'alice' });
    await memex.users.create({ id: 'bob' });
    try {
      // Bob's import-sized backlog: three sessions, each held at the model.
      for (let i = 0; i < 3; i++) {
        const session = await memex.sessions.create('bob');
        await memex.messages.append('bob', session.id, { role: 'user', content: `HOLD bob's long history, part ${i}` });
      }
      await until(() => embedder.held === 1);
      const mine = await memex.sessions.create('alice');
      await memex.messages.append('alice', mine.id, { role: 'user', content: 'The spare key is under the blue flowerpot.' });
      let found: string[] | null = null;
      const search = memex.search('alice', 'where is the spare key', { mode: 'lexical' }).then((report) => (found = report.hits.map((hit) => hit.text)));
      // Bob's first session ends; Alice's goes next, before his other two (which then share one model call).
      embedder.release();
      await search;
      expect(found).toEqual(['The spare key is under the blue flowerpot.']);
      expect(embedder.held).toBe(2);
    } finally {
      embedder.releaseAll();
      await memex.flush();
    }
  });
});

async function until(ok: () => boolean): Promise<void> {
  for (const deadline = Date.now() + 10_000; !ok(); ) {
    if (Date.now() > deadline) throw new Error('never happened');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
