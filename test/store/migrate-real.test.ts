import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HashedEmbedder, Memex } from '../../src/index.js';
import { FlatFileStore, migrateStore, PostgresStore, type Store } from '../../src/store/index.js';
import { expectCode } from '../helpers/errors.js';
import { EVAL_FILES_MISSING, hasEvalFiles, hasLocomo, IMAGES, LOCOMO_MISSING, locomoSessions, PDFS } from '../helpers/eval.js';
import { modelEnv } from '../helpers/model.js';
import { resetMemexSchema, startTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';
import { filesOf, snapshot } from './migrate-helpers.js';

const ready = hasLocomo && hasEvalFiles;

const open: Store[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((store) => store.close()));
});

async function openStore(dataDir: string): Promise<FlatFileStore> {
  // fsync `none`: what is tested is what the copy holds, not durability (the conformance suite covers that).
  const store = await FlatFileStore.open({ dataDir, fsync: 'none', lockTimeoutMs: 1000, onWarning: () => undefined });
  open.push(store);
  return store;
}

/**
 * The real data, embedded once for the file into a template data dir that each test copies: three
 * of LoCoMo's conversations (70 sessions, one user per conversation, its turns with their speakers,
 * times and dialogue ids: enough to page every listing, and a quarter of the time of all ten) and
 * a session with a real PDF and a scanned image ingested (text, OCR, thumbnails, their rows), all
 * with vectors of the hashed embedder: a real (lexical) embedder, fast enough to embed all of LoCoMo
 * per run. The copy moves rows whatever model made them, so the model does not change what is tested.
 */
describe.skipIf(!ready)('migrateStore on real data: LoCoMo conversations, a PDF and a scanned image, with their vector rows', () => {
  let template: string;
  let original: unknown;
  let database: TestDatabase;

  const conversations = ['conv-26', 'conv-30', 'conv-41'];
  const sessions = ready ? locomoSessions().filter((s) => conversations.includes(s.conversation)) : [];
  const messages = sessions.reduce((sum, s) => sum + s.turns.length, 0) + 2;

  beforeAll(async () => {
    database = await startTestDatabase();
    template = join(await mkdtemp(join(tmpdir(), 'memex-migrate-')), 'data');
    const memex = await Memex.open({ dataDir: template, env: modelEnv, embedder: new HashedEmbedder(), config: { fsync: 'none' }, onWarning: () => undefined });
    try {
      for (const s of sessions) {
        await memex.users.ensure(s.conversation);
        const session = await memex.sessions.create(s.conversation, { createdAt: s.startedAt, metadata: { locomoSession: s.index } });
        const start = Date.parse(s.startedAt);
        await memex.messages.appendMany(
          s.conversation,
          session.id,
          s.turns.map((turn, i) => ({
            role: turn.speaker === s.speakerA ? ('user' as const) : ('assistant' as const),
            content: `${turn.speaker}: ${turn.text}`,
            createdAt: new Date(start + i * 1000).toISOString(),
            metadata: { diaId: turn.diaId },
          })),
        );
      }
      await memex.users.create({ id: 'reader', name: 'Reader' });
      const papers = await memex.sessions.create('reader', { title: 'Papers' });
      await memex.messages.append('reader', papers.id, { role: 'user', content: 'Here is the trace compilation paper and a scan.' });
      const pdf = await memex.ingestFile('reader', papers.id, { path: join(PDFS, 'tracemonkey.pdf') }, { name: 'tracemonkey.pdf' });
      const image = await memex.ingestFile('reader', papers.id, { path: join(IMAGES, 'phototest.tif') }, { name: 'phototest.tif' });
      await memex.messages.append('reader', papers.id, { role: 'assistant', content: 'Both are stored.', attachments: [{ fileId: pdf.file.id, name: 'tracemonkey.pdf' }, { fileId: image.file.id }] });
      await memex.flush();
    } finally {
      await memex.close();
    }
    const store = await openStore(template);
    original = await snapshot(store);
    await store.close();
    open.length = 0;
  }, 240_000);

  afterAll(async () => {
    if (template) await rm(join(template, '..'), { recursive: true, force: true });
    await database?.stop();
  });

  const copyOfTemplate = async (): Promise<string> => {
    const dir = join(await tempDir(), 'a');
    await cp(template, dir, { recursive: true });
    return dir;
  };

  it('flat → flat → flat gives back the same messages (ids, times, roles, content, metadata), file bytes and vector rows', async () => {
    const root = await tempDir();
    const a = await openStore(await copyOfTemplate());
    const b = await openStore(join(root, 'b'));
    const there = await migrateStore(a, b);
    expect(there.totals).toMatchObject({ users: conversations.length + 1, sessions: sessions.length + 1, messages, files: 2 });
    expect(there.totals.vectorRows).toBeGreaterThan(messages); // every message has a row, and the files add theirs
    expect(there.totals.artifacts).toBeGreaterThanOrEqual(4);
    expect(there.verification).toMatchObject({ ok: true, sessions: sessions.length + 1 });
    const c = await openStore(join(root, 'c'));
    const back = await migrateStore(b, c);
    expect(back.written).toEqual(there.written);
    // b is verified against a; c, made from b, is compared whole with the original.
    expect(await snapshot(c)).toEqual(original);
  }, 120_000);

  it('flat → PostgreSQL → flat gives back the same messages, file bytes and vector rows', async () => {
    await resetMemexSchema(database.url);
    const a = await openStore(await copyOfTemplate());
    const db = await PostgresStore.open({ url: database.url, hnsw: { m: 8, efConstruction: 32 }, onWarning: () => undefined });
    open.push(db);
    const there = await migrateStore(a, db);
    expect(there.verification).toMatchObject({ ok: true, sessions: sessions.length + 1 });
    const c = await openStore(join(await tempDir(), 'c'));
    const back = await migrateStore(db, c);
    expect(back.written).toEqual(there.written);
    expect(await snapshot(c)).toEqual(original);
  }, 240_000);

  it('an interrupted migration, resumed, gives the same result; a second run then changes nothing', async () => {
    const root = await tempDir();
    const a = await openStore(await copyOfTemplate());
    let b = await openStore(join(root, 'b'));
    // Cut off mid-way, twice: once early among the LoCoMo sessions, once later.
    for (const cutAt of [30, 150]) {
      const controller = new AbortController();
      let steps = 0;
      await expectCode(migrateStore(a, b, { signal: controller.signal, onProgress: () => (++steps === cutAt ? controller.abort() : undefined) }), 'MEMEX_ABORTED');
    }
    const rest = await migrateStore(a, b);
    expect(rest.written.messages).toBeGreaterThan(0);
    expect(rest.written.messages).toBeLessThan(rest.totals.messages);
    expect(rest.verification).toMatchObject({ ok: true });
    expect(await snapshot(b)).toEqual(original);
    // Files are compared with the target closed: a store writes its listing cache soon after a change, or on close.
    await b.close();
    const before = await filesOf(join(root, 'b'));
    b = await openStore(join(root, 'b'));
    const again = await migrateStore(a, b);
    expect(Object.values(again.written).every((n) => n === 0)).toBe(true);
    await b.close();
    expect(await filesOf(join(root, 'b'))).toEqual(before);
  }, 120_000);
});

if (!ready) {
  describe('migrateStore on real data', () => {
    it.skip([!hasLocomo && LOCOMO_MISSING, !hasEvalFiles && EVAL_FILES_MISSING].filter(Boolean).join('; '), () => undefined);
  });
}
