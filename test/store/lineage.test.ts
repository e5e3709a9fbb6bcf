import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Memex, type Embedder, type Message, type MemexWarning } from '../../src/index.js';
import { BACKENDS, backendConfig, type Backend } from '../helpers/backends.js';
import { expectCode } from '../helpers/errors.js';
import { modelEnv } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * A wrapper around the real model that counts the texts it embeds and, while `failing`, refuses to
 * embed: a fork or merge that called it would either raise the count or fail. (A wrapper named as
 * one, for this test of the code around the embedder; the vectors are the real model's.)
 */
class CountingEmbedder implements Embedder {
  embedded = 0;
  failing = false;
  constructor(private readonly inner: Embedder) {}
  get modelId(): string {
    return this.inner.modelId;
  }
  get dimension(): number {
    return this.inner.dimension;
  }
  get maxTokens(): number {
    return this.inner.maxTokens;
  }
  countTokens(text: string): number {
    return this.inner.countTokens(text);
  }
  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    if (this.failing) throw new Error('CountingEmbedder: embedding was called while failing');
    this.embedded += texts.length;
    return this.inner.embed(texts);
  }
}

let real: Embedder;
beforeAll(async () => {
  // The test database starts here (PGlite takes seconds), not inside the first test's time.
  const warm = await mkdtemp(join(tmpdir(), 'memex-warm-'));
  await backendConfig('postgres', warm);
  await rm(warm, { recursive: true, force: true });
  const dir = await mkdtemp(join(tmpdir(), 'memex-probe-'));
  const probe = await Memex.open({ dataDir: dir, env: modelEnv });
  real = await probe.embedder();
  await probe.close();
  await rm(dir, { recursive: true, force: true });
}, 120_000);

const open: Memex[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((memex) => memex.close()));
});

async function openMemex(backend: Backend, embedder: Embedder = real, warnings: MemexWarning[] = []): Promise<Memex> {
  const dir = await tempDir();
  const memex = await Memex.open({ dataDir: dir, env: modelEnv, embedder, config: await backendConfig(backend, dir), onWarning: (w) => warnings.push(w) });
  open.push(memex);
  await memex.users.create({ id: 'alice' });
  return memex;
}

async function allMessages(memex: Memex, sessionId: string): Promise<Message[]> {
  const out: Message[] = [];
  for await (const message of memex.messages.stream('alice', sessionId)) out.push(message);
  return out;
}

/** Each row's chunk id with its vector, as a comparable string. */
async function rowsOf(memex: Memex, sessionId: string): Promise<Map<string, string>> {
  const data = await memex.vectors.read('alice', sessionId);
  const dim = data.dimension ?? 0;
  const out = new Map<string, string>();
  data.lines.forEach((line, i) => {
    expect(out.has(line.chunkId), `row ${line.chunkId} twice in ${sessionId}`).toBe(false);
    out.set(line.chunkId, Buffer.from(data.vectors.slice(i * dim, (i + 1) * dim).buffer).toString('base64'));
  });
  return out;
}

const WORDS = ['harbour', 'violin', 'granite', 'saffron', 'glacier', 'lantern', 'orchard', 'compass', 'meadow', 'quartz'];

describe.each(BACKENDS)('fork and merge on %s', (backend) => {
  it('fork then merge loses nothing and duplicates nothing: message ids, contents, vectors, files (property)', async () => {
    const memex = await openMemex(backend);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.constantFrom(...WORDS), { minLength: 1, maxLength: 6 }), { minLength: 2, maxLength: 6 }),
        fc.nat(),
        fc.nat(),
        fc.array(fc.constantFrom(...WORDS), { minLength: 0, maxLength: 2 }),
        fc.constantFrom('time' as const, 'concat' as const),
        async (texts, forkPick, filePick, extra, mode) => {
          const source = await memex.sessions.create('alice', { title: 'source' });
          const fileAt = filePick % texts.length;
          const { file } = await memex.files.ingest('alice', source.id, { bytes: Buffer.from(`Notes about ${texts[fileAt]?.join(' ')} and more.\n`) }, { name: 'notes.txt' });
          await memex.messages.appendMany(
            'alice',
            source.id,
            texts.map((words, i) => ({ role: i % 2 === 0 ? 'user' : 'assistant', content: words.join(' '), ...(i === fileAt ? { attachments: [{ fileId: file.id }] } : {}) })),
          );
          await memex.flush();
          const sourceMessages = await allMessages(memex, source.id);
          const at = sourceMessages[forkPick % sourceMessages.length] as Message;
          const fork = await memex.sessions.fork('alice', source.id, at.id);
          if (extra.length > 0) await memex.messages.appendMany('alice', fork.session.id, extra.map((word) => ({ role: 'user' as const, content: `${word} after the fork` })));
          await memex.flush();

          const forkMessages = await allMessages(memex, fork.session.id);
          const prefix = sourceMessages.slice(0, sourceMessages.indexOf(at) + 1);
          expect(forkMessages.slice(0, prefix.length).map((m) => [m.id, m.content])).toEqual(prefix.map((m) => [m.id, m.content]));
          expect(forkMessages).toHaveLength(prefix.length + extra.length);
          expect((await memex.files.list('alice', fork.session.id)).map((f) => f.id)).toEqual(fileAt <= prefix.length - 1 ? [file.id] : []);

          const merged = await memex.sessions.merge('alice', [source.id, fork.session.id], { mode });
          const mergedMessages = await allMessages(memex, merged.session.id);
          const expected = new Map([...sourceMessages, ...forkMessages].map((m) => [m.id, m.content]));
          // Nothing lost, nothing twice: exactly the union of the two sessions' messages, contents unchanged.
          expect(mergedMessages.map((m) => m.id).sort()).toEqual([...expected.keys()].sort());
          for (const message of mergedMessages) expect(message.content).toBe(expected.get(message.id));
          expect(merged.shared).toBe(prefix.length);
          if (mode === 'time') {
            const times = mergedMessages.map((m) => Date.parse(m.createdAt));
            expect(times).toEqual([...times].sort((a, b) => a - b));
          } else {
            expect(mergedMessages.slice(0, sourceMessages.length).map((m) => m.id)).toEqual(sourceMessages.map((m) => m.id));
          }

          const [sourceRows, forkRows, mergedRows] = [await rowsOf(memex, source.id), await rowsOf(memex, fork.session.id), await rowsOf(memex, merged.session.id)];
          const union = new Map([...sourceRows, ...forkRows]);
          expect([...mergedRows.keys()].sort()).toEqual([...union.keys()].sort());
          for (const [chunkId, vector] of mergedRows) expect(vector, chunkId).toBe(union.get(chunkId));
          // A message's rows are the source's own, bit for bit, in the fork as in the merge.
          for (const [chunkId, vector] of forkRows) if (sourceRows.has(chunkId)) expect(vector, chunkId).toBe(sourceRows.get(chunkId));
          expect((await memex.files.list('alice', merged.session.id)).map((f) => f.id)).toEqual([file.id]);
          expect(await memex.files.artifact('alice', merged.session.id, file.id, 'text.json')).toEqual(await memex.files.artifact('alice', source.id, file.id, 'text.json'));
        },
      ),
      { numRuns: 3 },
    );
  });

  it('fork copies the vector rows without calling the embedder, and search finds the fork', async () => {
    const counting = new CountingEmbedder(real);
    const warnings: MemexWarning[] = [];
    const memex = await openMemex(backend, counting, warnings);
    const source = await memex.sessions.create('alice');
    const [first] = await memex.messages.appendMany('alice', source.id, [
      { role: 'user', content: 'The lighthouse keeper paints the tower vermilion every spring.' },
      { role: 'assistant', content: 'Vermilion keeps the tower visible from the harbour.' },
      { role: 'user', content: 'Later we talked about something else entirely.' },
    ]);
    await memex.flush();
    const before = counting.embedded;
    counting.failing = true;
    const fork = await memex.sessions.fork('alice', source.id, (first as Message).id);
    await memex.flush();
    expect(counting.embedded).toBe(before);
    expect(warnings.filter((w) => w.kind === 'indexing-failed')).toEqual([]);
    expect(fork.vectorRows).toBeGreaterThan(0);
    expect((await memex.vectors.status('alice', fork.session.id)).rows).toBe(fork.vectorRows);
    counting.failing = false;
    const { hits } = await memex.search('alice', 'lighthouse keeper vermilion tower', { k: 10 });
    expect(hits.map((h) => h.sessionId)).toContain(fork.session.id);
  });

  it('links a fork both ways and a merge to its sources; deleteSources moves them to the trash; the fork has no summary until a window builds one', async () => {
    const memex = await openMemex(backend);
    const source = await memex.sessions.create('alice', { title: 'Trip' });
    const written = await memex.messages.appendMany('alice', source.id, [
      { role: 'user', content: 'Lisbon in May?' },
      { role: 'assistant', content: 'Yes, warm and dry.' },
    ]);
    const at = written[0] as Message;
    const one = await memex.sessions.fork('alice', source.id, at.id);
    const two = await memex.sessions.fork('alice', source.id, at.id, { title: 'Second try' });
    expect(one.session).toMatchObject({ forkedFrom: { sessionId: source.id, messageId: at.id }, title: 'Trip', messageCount: 1 });
    expect(two.session.title).toBe('Second try');
    expect((await memex.sessions.get('alice', source.id)).forks).toEqual([one.session.id, two.session.id]);
    expect(await memex.summaries.get('alice', one.session.id)).toBeNull();

    const merged = await memex.sessions.merge('alice', [one.session.id, two.session.id], { mode: 'concat', deleteSources: true });
    expect(merged.session.mergedFrom).toEqual([one.session.id, two.session.id]);
    const [message] = await allMessages(memex, merged.session.id);
    expect(message?.metadata.mergedFrom).toEqual([one.session.id, two.session.id]);
    // Deleted as any session is: to the trash, restorable.
    expect((await memex.sessions.get('alice', one.session.id)).trashedAt).not.toBeNull();
    expect((await memex.sessions.get('alice', two.session.id)).trashedAt).not.toBeNull();
    const listed = (await memex.sessions.list('alice')).sessions.map((s) => s.id);
    expect(listed).toContain(merged.session.id);
    expect(listed).not.toContain(one.session.id);
    expect(listed).not.toContain(two.session.id);
  });

  it('refuses bad forks and merges with codes, leaving nothing half-made', async () => {
    const memex = await openMemex(backend);
    const a = await memex.sessions.create('alice');
    const b = await memex.sessions.create('alice');
    await memex.messages.append('alice', a.id, { id: 'msg_same', role: 'user', content: 'one thing' });
    await memex.messages.append('alice', b.id, { id: 'msg_same', role: 'user', content: 'another thing' });
    await expectCode(memex.sessions.fork('alice', a.id, 'msg_missing'), 'MEMEX_MESSAGE_NOT_FOUND');
    await expectCode(memex.sessions.fork('alice', a.id, '../x'), 'MEMEX_INVALID_ID');
    await expectCode(memex.sessions.merge('alice', [a.id]), 'MEMEX_INVALID_INPUT');
    await expectCode(memex.sessions.merge('alice', [a.id, a.id]), 'MEMEX_INVALID_INPUT');
    await expectCode(memex.sessions.merge('alice', [a.id, 'nope']), 'MEMEX_SESSION_NOT_FOUND');
    await expectCode(memex.sessions.merge('alice', [a.id, b.id], { mode: 'sideways' as 'time' }), 'MEMEX_INVALID_INPUT');
    await expectCode(memex.sessions.merge('alice', [a.id, b.id]), 'MEMEX_MERGE_CONFLICT');
    expect((await memex.sessions.list('alice')).sessions.map((s) => s.id).sort()).toEqual([a.id, b.id].sort());
  });
});
