import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Chunk, Message } from '../../src/core/index.js';
import { FlatFileStore, migrateStore, PostgresStore, toNewMessage, type MigrateCounts, type Store } from '../../src/store/index.js';
import { expectCode } from '../helpers/errors.js';
import { resetMemexSchema, startTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';
import { filesOf, snapshot } from './migrate-helpers.js';

const open: Store[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((store) => store.close()));
});

async function openStore(dataDir: string): Promise<FlatFileStore> {
  const store = await FlatFileStore.open({ dataDir, lockTimeoutMs: 1000, onWarning: () => undefined });
  open.push(store);
  return store;
}

const DIM = 8;
const t = (n: number): string => new Date(Date.UTC(2023, 4, 1) + n * 1000).toISOString();
/** Rows made up by the test (what is compared is that they are copied bit for bit, not what they mean). */
const row = (seed: number): Float32Array => Float32Array.from({ length: DIM }, (_, i) => Math.sin(seed * 31 + i) / 3);

function messageChunks(message: Message, parts: number): Chunk[] {
  const step = Math.ceil(message.content.length / parts);
  return Array.from({ length: parts }, (_, index) => ({
    chunkId: `${message.id}:${index}`,
    source: { kind: 'message' as const, messageId: message.id, role: message.role, createdAt: message.createdAt },
    part: { index, count: parts },
    span: { start: index * step, end: Math.min(message.content.length, (index + 1) * step) },
    text: message.content.slice(index * step, (index + 1) * step),
    tokens: 3,
  }));
}

async function appendRows(store: Store, user: string, session: string, chunks: Chunk[], seed: number): Promise<void> {
  await store.appendVectors(user, session, { model: 'test-model', chunks, vectors: chunks.map((_, i) => row(seed + i)) });
}

/**
 * A source with every kind of record: two users, personas, notes, a long session of every message
 * shape with files, artifacts, a summary and rows of messages and files interleaved, an imported
 * session titled automatically, and an empty session.
 */
async function fill(store: Store): Promise<void> {
  await store.createUser({ id: 'alice', name: 'Alice', metadata: { plan: 'pro' } });
  await store.createUser({ id: 'bob' });
  await store.createPersona('alice', { id: 'tutor', name: 'Tutor', instructions: 'Teach patiently.', metadata: { v: 2 } });
  await store.addNote('alice', { id: 'tea', text: 'Likes green tea', kind: 'preference' });
  await store.addNote('alice', { text: 'Lives in Lisbon', pinned: false });
  const long = await store.createSession('alice', { title: 'Long chat', personaId: 'tutor', metadata: { project: 'x' }, createdAt: t(0), participants: ['tutor'] });
  const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(3000, 9)]);
  const { file } = await store.putFile('alice', long.id, { source: { bytes: pdf }, name: 'report.pdf', metadata: { from: 'upload' } });
  await store.setFileContent('alice', long.id, file.id, {
    kind: 'pdf', pages: 1, chunks: 2, characters: 40, warnings: [], ingestedAt: t(1), title: 'Report', author: null, subject: null, creator: null, producer: null, createdAt: null, encrypted: false, ocrPages: [],
  });
  await store.writeFileArtifact('alice', long.id, file.id, 'text.json', JSON.stringify({ units: ['page one'] }));
  await store.writeFileArtifact('alice', long.id, file.id, 'thumb.webp', Buffer.from([1, 2, 3, 4]));
  const first = await store.appendMessages('alice', long.id, [
    { role: 'system', content: 'Be brief.', createdAt: t(2) },
    { role: 'user', content: [{ type: 'text', text: 'What is in this?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA', detail: 'low' } }], name: 'al', createdAt: t(3), attachments: [{ fileId: file.id, name: 'report.pdf', mimeType: 'application/pdf' }] },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"q":"report"}' } }], createdAt: t(4), personaId: 'tutor' },
    { role: 'tool', content: 'found it', tool_call_id: 'call_1', toolName: 'lookup', createdAt: t(5), metadata: { ms: 12 } },
  ]);
  const bulk = await store.appendMessages('alice', long.id, Array.from({ length: 1200 }, (_, i) => ({ role: i % 2 ? ('assistant' as const) : ('user' as const), content: `turn ${i}: ${'word '.repeat(i % 7)}`, createdAt: t(10 + i), metadata: { i } })));
  // Rows: the first messages (one in three chunks), then the file's, then later messages.
  await appendRows(store, 'alice', long.id, [...messageChunks(first[1]!, 3), ...messageChunks(first[3]!, 1)], 0);
  const fileChunks: Chunk[] = [0, 1].map((index) => ({ chunkId: `${file.id}:1:${index}`, source: { kind: 'file', fileId: file.id, page: 1 }, part: { index, count: 2 }, span: { start: index * 20, end: index * 20 + 20 }, text: 'page one text here..', tokens: 5 }));
  await appendRows(store, 'alice', long.id, fileChunks, 100);
  await appendRows(store, 'alice', long.id, bulk.slice(0, 700).flatMap((m, i) => messageChunks(m, 1 + (i % 3))), 200);
  await store.setSummary('alice', long.id, { v: 1, sessionId: long.id, text: 'They talked.', coversThroughMessageId: bulk[10]!.id, coveredMessages: 15, method: 'model', tokens: 3, updatedAt: t(5000) });

  const imported = await store.createSession('alice', { origin: { kind: 'imported', source: 'chatgpt', conversationId: 'conv-1' }, createdAt: t(20_000) });
  await store.appendMessages('alice', imported.id, [{ role: 'assistant', content: 'Hello!', createdAt: t(20_001) }]);
  await store.appendMessages('alice', imported.id, [{ role: 'user', content: 'Tell me about tides', createdAt: t(20_002) }]);
  // Lineage travels with the session (fork and merge links, a panel's participants).
  await store.restoreSession('alice', { ...(await store.getSession('alice', imported.id)), forkedFrom: { sessionId: long.id, messageId: first[0]!.id }, mergedFrom: [long.id] });
  await store.updateSession('alice', long.id, { addFork: imported.id });
  await store.appendVectors('alice', imported.id, { model: 'test-model', chunks: messageChunks((await store.listMessages('alice', imported.id)).messages[1]!, 1), vectors: [row(900)] });
  // The message trash travels: a trashed message with its row, restorable in place in the copy.
  const [doomed] = await store.appendMessages('alice', imported.id, [{ role: 'user', content: 'Forget I said that', createdAt: t(20_003) }]);
  await store.appendVectors('alice', imported.id, { model: 'test-model', chunks: messageChunks(doomed!, 1), vectors: [row(901)] });
  await store.trashMessage('alice', imported.id, doomed!.id, { at: t(20_004) });
  // Tags and the trash travel: a trashed session arrives trashed, with its messages and rows.
  await store.updateSession('alice', long.id, { addTags: ['work', 'long'] });
  await store.updateSession('alice', imported.id, { addTags: ['ocean'] });
  await store.trashSession('alice', imported.id, { at: t(30_000) });
  await store.createSession('bob', { title: 'Empty' });

  // An archived session: carried from its archive and archived again in the target.
  const old = await store.createSession('alice', { title: 'Old chat', createdAt: t(30_000) });
  const { file: notes } = await store.putFile('alice', old.id, { source: { bytes: Buffer.from('old notes\n') }, name: 'notes.txt' });
  await store.writeFileArtifact('alice', old.id, notes.id, 'text.json', JSON.stringify({ units: ['old notes'] }));
  const said = await store.appendMessages('alice', old.id, [
    { role: 'user', content: 'an old question', createdAt: t(30_001), attachments: [{ fileId: notes.id }] },
    { role: 'assistant', content: 'an old answer', createdAt: t(30_002) },
    { role: 'user', content: 'thanks', createdAt: t(30_003) },
  ]);
  await appendRows(store, 'alice', old.id, [...messageChunks(said[0]!, 2), ...messageChunks(said[1]!, 1)], 5000);
  await appendRows(store, 'alice', old.id, [{ chunkId: `${notes.id}:1:0`, source: { kind: 'file', fileId: notes.id, page: 1 }, part: { index: 0, count: 1 }, span: { start: 0, end: 9 }, text: 'old notes', tokens: 2 }], 6000);
  // Its message trash goes into the archive with it, and travels from there.
  const [oldDoomed] = await store.appendMessages('alice', old.id, [{ role: 'assistant', content: 'an answer taken back', createdAt: t(30_003) }]);
  await appendRows(store, 'alice', old.id, messageChunks(oldDoomed!, 2), 7000);
  await store.trashMessage('alice', old.id, oldDoomed!.id, { at: t(30_004) });
  await store.setSummary('alice', old.id, { v: 1, sessionId: old.id, text: 'Old times.', coversThroughMessageId: said[0]!.id, coveredMessages: 1, method: 'model', tokens: 3, updatedAt: t(30_004) });
  await store.archiveSession('alice', old.id, { now: new Date(t(40_000)) });
}

/** The archived session of `fill` is archived in `store`, its content out of reach of live reads. */
async function expectArchived(store: Store): Promise<void> {
  const [old] = (await store.listSessions('alice', { archived: 'only' })).sessions;
  expect(old).toMatchObject({ title: 'Old chat', archivedAt: t(40_000), messageCount: 3 });
  await expectCode(store.listMessages('alice', old!.id), 'MEMEX_SESSION_ARCHIVED');
}

const nothing: MigrateCounts = { users: 0, personas: 0, notes: 0, sessions: 0, messages: 0, files: 0, fileBytes: 0, artifacts: 0, summaries: 0, vectorRows: 0 };

describe('migrateStore, flat files to flat files', () => {
  it('round trip: a copy and a copy back hold the same users, sessions, messages, files and vector rows', async () => {
    const root = await tempDir();
    const a = await openStore(join(root, 'a'));
    await fill(a);
    const b = await openStore(join(root, 'b'));
    const there = await migrateStore(a, b, { messageBatch: 100, vectorWindow: 64 });
    expect(there.totals).toMatchObject({ users: 2, personas: 1, notes: 2, sessions: 4, messages: 1209, files: 2, artifacts: 3, summaries: 2 });
    expect(there.totals.vectorRows).toBeGreaterThan(1400);
    expect(there.written).toEqual({ ...there.totals });
    expect(there.verification).toMatchObject({ ok: true, sessions: 4, users: 2 });
    const c = await openStore(join(root, 'c'));
    await migrateStore(b, c, { messageBatch: 40, vectorWindow: 9 });
    const original = await snapshot(a);
    expect(await snapshot(b)).toEqual(original);
    expect(await snapshot(c)).toEqual(original);
    for (const store of [a, b, c]) await expectArchived(store);
  });

  it('a second run changes nothing: it writes nothing and leaves every file of the target as it was', async () => {
    const root = await tempDir();
    const a = await openStore(join(root, 'a'));
    await fill(a);
    let b = await openStore(join(root, 'b'));
    await migrateStore(a, b);
    // Files are compared with the target closed: a store writes its listing cache soon after a change, or on close.
    await b.close();
    const before = await filesOf(join(root, 'b'));
    b = await openStore(join(root, 'b'));
    const again = await migrateStore(a, b);
    expect(again.written).toEqual(nothing);
    expect(again.totals).toEqual((await migrateStore(a, b, { verify: false })).totals);
    expect(again.verification).toMatchObject({ ok: true });
    await b.close();
    expect(await filesOf(join(root, 'b'))).toEqual(before);
  });

  it('an interrupted migration, resumed, gives the same result, wherever it was cut off', async () => {
    const root = await tempDir();
    const a = await openStore(join(root, 'a'));
    await fill(a);
    const original = await snapshot(a);
    const b = await openStore(join(root, 'b'));
    // Cut off after the 1st, 5th, 12th, ... progress step: each run gets a little further.
    for (const step of [1, 5, 12, 20]) {
      const controller = new AbortController();
      let seen = 0;
      await expectCode(
        migrateStore(a, b, { messageBatch: 100, vectorWindow: 50, signal: controller.signal, onProgress: () => (++seen === step ? controller.abort() : undefined) }),
        'MEMEX_ABORTED',
      );
    }
    const rest = await migrateStore(a, b, { messageBatch: 100, vectorWindow: 50 });
    expect(rest.written.messages).toBeLessThan(1209);
    expect(rest.verification).toMatchObject({ ok: true });
    expect(await snapshot(b)).toEqual(original);
    await expectArchived(b);
  });

  it('an archived session cut off half-copied is finished and archived; one unarchived and added to since is brought up to date, live', async () => {
    const root = await tempDir();
    const a = await openStore(join(root, 'a'));
    await fill(a);
    const b = await openStore(join(root, 'b'));
    const [old] = (await a.listSessions('alice', { archived: 'only' })).sessions;
    // Cut off part-way: the target holds the session live with its first message only.
    const content = await a.readArchivedSession('alice', old!.id);
    await b.restoreUser(await a.getUser('alice'));
    await b.restoreSession('alice', old!);
    for (const file of content.files) await b.putFile('alice', old!.id, { source: { bytes: file.bytes }, name: file.record.name, createdAt: file.record.createdAt });
    await b.appendMessages('alice', old!.id, [toNewMessage(content.messages[0]!)]);
    await migrateStore(a, b);
    expect(await snapshot(b)).toEqual(await snapshot(a));
    await expectArchived(b);

    await a.unarchiveSession('alice', old!.id);
    await a.appendMessages('alice', old!.id, [{ role: 'assistant', content: 'welcome back', createdAt: t(50_000) }]);
    const again = await migrateStore(a, b);
    expect(again.written).toMatchObject({ sessions: 1, messages: 1 });
    expect(await snapshot(b)).toEqual(await snapshot(a));
    expect((await b.getSession('alice', old!.id)).archivedAt).toBeNull();
  });

  it('only the users asked for', async () => {
    const root = await tempDir();
    const a = await openStore(join(root, 'a'));
    await fill(a);
    const b = await openStore(join(root, 'b'));
    const result = await migrateStore(a, b, { userIds: ['bob'] });
    expect(result.totals).toMatchObject({ users: 1, sessions: 1, messages: 0 });
    expect((await b.listUsers()).map((u) => u.id)).toEqual(['bob']);
    await expectCode(migrateStore(a, b, { userIds: ['nobody'] }), 'MEMEX_USER_NOT_FOUND');
  });

  it('refuses a target whose vectors are of another model, and writes nothing there', async () => {
    const root = await tempDir();
    const a = await openStore(join(root, 'a'));
    await fill(a);
    const b = await openStore(join(root, 'b'));
    await b.setEmbeddingModel({ model: 'other-model', dimension: DIM });
    await expectCode(migrateStore(a, b), 'MEMEX_MODEL_MISMATCH');
    expect(await b.listUsers()).toEqual([]);
  });

  it('refuses to append onto a session the target holds with another history', async () => {
    const root = await tempDir();
    const a = await openStore(join(root, 'a'));
    await fill(a);
    const b = await openStore(join(root, 'b'));
    const [session] = (await a.listSessions('bob')).sessions;
    await b.restoreUser(await a.getUser('bob'));
    await b.restoreSession('bob', session!);
    await b.appendMessages('bob', session!.id, [{ role: 'user', content: 'something else' }]);
    await expectCode(migrateStore(a, b, { userIds: ['bob'] }), 'MEMEX_MIGRATION_CONFLICT');
  });

  it('a message whose attached file was deleted from the session: a coded error that names it, not a bare file-not-found', async () => {
    const root = await tempDir();
    const a = await openStore(join(root, 'a'));
    await a.createUser({ id: 'carol' });
    const { id } = await a.createSession('carol');
    const { file } = await a.putFile('carol', id, { source: { bytes: Buffer.from('notes\n') }, name: 'notes.txt' });
    const [message] = await a.appendMessages('carol', id, [{ role: 'user', content: 'see the notes', attachments: [{ fileId: file.id }] }]);
    await a.deleteFile('carol', id, file.id);
    const b = await openStore(join(root, 'b'));
    const error = await expectCode(migrateStore(a, b), 'MEMEX_MIGRATION_CONFLICT');
    expect(error.details).toMatchObject({ userId: 'carol', sessionId: id, messageId: message!.id, fileId: file.id });
  });

  it('reports a target that differs after copying (a stored file changed on disk) instead of passing it', async () => {
    const root = await tempDir();
    const a = await openStore(join(root, 'a'));
    await fill(a);
    const b = await openStore(join(root, 'b'));
    await migrateStore(a, b);
    const [long] = (await a.listSessions('alice', { title: 'Long chat' })).sessions;
    const filesDir = join(root, 'b', 'users', 'alice', 'sessions', long!.id, 'files');
    const blob = (await readdir(filesDir)).find((name) => name.endsWith('.pdf'));
    await writeFile(join(filesDir, blob!), Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(3000, 8)]));
    const error = await expectCode(migrateStore(a, b), 'MEMEX_MIGRATION_MISMATCH');
    expect(error.details.differences).toEqual([{ userId: 'alice', sessionId: long!.id, differs: ['files'] }]);
  });
});

describe('migrateStore, flat files → PostgreSQL → flat files', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await startTestDatabase();
  }, 60_000);
  afterAll(async () => {
    await database?.stop();
  });
  beforeEach(async () => {
    await resetMemexSchema(database.url);
  });

  async function openDatabase(): Promise<PostgresStore> {
    const store = await PostgresStore.open({ url: database.url, hnsw: { m: 8, efConstruction: 32 }, onWarning: () => undefined });
    open.push(store);
    return store;
  }

  it('round trip: the copy back holds the same users, sessions, messages, files and vector rows', async () => {
    const root = await tempDir();
    const a = await openStore(join(root, 'a'));
    await fill(a);
    const db = await openDatabase();
    const there = await migrateStore(a, db, { messageBatch: 300, vectorWindow: 200 });
    expect(there.verification).toMatchObject({ ok: true, sessions: 4, users: 2 });
    expect(there.written).toEqual(there.totals);
    const c = await openStore(join(root, 'c'));
    const back = await migrateStore(db, c, { messageBatch: 300, vectorWindow: 200 });
    expect(back.written).toEqual(there.written);
    const original = await snapshot(a);
    expect(await snapshot(db)).toEqual(original);
    expect(await snapshot(c)).toEqual(original);
    for (const store of [db, c]) await expectArchived(store);
  });

  it('an interrupted migration into the database, resumed, gives the same result; a second run writes nothing', async () => {
    const root = await tempDir();
    const a = await openStore(join(root, 'a'));
    await fill(a);
    const db = await openDatabase();
    for (const step of [2, 6, 9]) {
      const controller = new AbortController();
      let seen = 0;
      await expectCode(
        migrateStore(a, db, { messageBatch: 200, vectorWindow: 100, signal: controller.signal, onProgress: () => (++seen === step ? controller.abort() : undefined) }),
        'MEMEX_ABORTED',
      );
    }
    const rest = await migrateStore(a, db, { messageBatch: 200, vectorWindow: 100 });
    expect(rest.written.messages).toBeLessThan(1209);
    expect(await snapshot(db)).toEqual(await snapshot(a));
    await expectArchived(db);
    const again = await migrateStore(a, db);
    expect(again.written).toEqual(nothing);
  });
});
