import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseId, type Chunk, type Message } from '../../src/core/index.js';
import { FlatFileStore, PostgresStore, toNewMessage, type Store } from '../../src/store/index.js';
import { expectCode } from '../helpers/errors.js';
import { resetMemexSchema, startTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * The trash of messages through the contract (`readTrashedMessages`, `restoreTrashedMessage`):
 * what one store reads, another (of either backend) writes into its trash so exactly that
 * untrashing there gives the session the source has after the same untrash: messages in order,
 * vector rows bit for bit and in order, the summary the trash kept.
 */
const DIM = 8;
const t = (n: number): string => new Date(Date.UTC(2024, 0, 1) + n * 1000).toISOString();
const row = (seed: number): Float32Array => Float32Array.from({ length: DIM }, (_, i) => Math.sin(seed * 17 + i) / 7);
const sha = (v: Float32Array): string => createHash('sha256').update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)).digest('hex');

const open: Store[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((store) => store.close()));
});

let database: TestDatabase;
beforeAll(async () => {
  database = await startTestDatabase();
}, 120_000);
afterAll(async () => {
  await database.stop();
});
beforeEach(async () => {
  await resetMemexSchema(database.url);
});

async function openFlat(): Promise<Store> {
  const store = await FlatFileStore.open({ dataDir: join(await tempDir(), 'data'), lockTimeoutMs: 1000, onWarning: () => undefined });
  open.push(store);
  return store;
}
/** A store on the test database (emptied before each test). */
async function openPg(): Promise<Store> {
  const store = await PostgresStore.open({ url: database.url, hnsw: { m: 8, efConstruction: 32 }, onWarning: () => undefined });
  open.push(store);
  return store;
}

function chunksOf(message: Message, parts: number): Chunk[] {
  return Array.from({ length: parts }, (_, index) => ({
    chunkId: `${message.id}:${index}`,
    source: { kind: 'message' as const, messageId: message.id, role: message.role, createdAt: message.createdAt },
    part: { index, count: parts },
    span: { start: 0, end: message.content.length },
    text: `${message.content} part ${index}`,
    tokens: 3,
  }));
}

/** A session of eight turns with rows (one, two or none a message); three trashed in an order that makes each one's place depend on another's. */
async function source(store: Store, user: string): Promise<{ sid: string; trashed: string[] }> {
  await store.createUser({ id: user });
  const session = await store.createSession(user, { title: 'Chat', createdAt: t(0) });
  const said = await store.appendMessages(
    user,
    session.id,
    Array.from({ length: 8 }, (_, i) => ({ role: i % 2 ? ('assistant' as const) : ('user' as const), content: `turn ${i} about tides`, createdAt: t(1 + i) })),
  );
  const chunks = said.flatMap((m, i) => (i === 5 ? [] : chunksOf(m, 1 + (i % 2))));
  await store.appendVectors(user, session.id, { model: 'test-model', chunks, vectors: chunks.map((_, i) => row(i)) });
  await store.setSummary(user, session.id, { v: 1, sessionId: session.id, text: 'They talked.', coversThroughMessageId: said[2]!.id, coveredMessages: 3, method: 'model', tokens: 3, updatedAt: t(50) });
  // 3 first (its place after 2), then 2 (after 1), then 0 (first): untrashed newest first, each goes back after the one it followed.
  const order = [said[3]!.id, said[2]!.id, said[0]!.id];
  for (const [i, id] of order.entries()) await store.trashMessage(user, session.id, id, { at: t(100 + i) });
  await store.appendMessages(user, session.id, [{ role: 'user', content: 'a later turn', createdAt: t(200) }]);
  return { sid: session.id, trashed: order };
}

/** Copies the session as backup and migrate do: its live messages and rows, then its trash, newest trashed first. */
async function copy(from: Store, to: Store, user: string, sid: string, toUser = user): Promise<void> {
  await to.restoreUser({ ...(await from.getUser(user)), id: parseId('user', toUser) });
  await to.restoreSession(toUser, await from.getSession(user, sid));
  await to.appendMessages(toUser, sid, (await from.listMessages(user, sid, { limit: 1000 })).messages.map(toNewMessage));
  const v = await from.readVectors(user, sid);
  const dimension = v.dimension ?? 0;
  if (v.model !== null) await to.appendVectors(toUser, sid, { model: v.model, chunks: v.lines, vectors: v.lines.map((_, i) => v.vectors.slice(i * dimension, (i + 1) * dimension)) });
  for (const item of (await from.readTrashedMessages(user, sid)).reverse()) await to.restoreTrashedMessage(toUser, sid, item);
}

async function untrashAll(store: Store, user: string, sid: string, trashed: readonly string[]): Promise<void> {
  for (const id of [...trashed].reverse()) await store.untrashMessage(user, sid, id);
}

async function state(store: Store, user: string, sid: string): Promise<unknown> {
  const v = await store.readVectors(user, sid);
  const dimension = v.dimension ?? 0;
  return {
    messages: (await store.listMessages(user, sid, { limit: 1000 })).messages,
    rows: v.lines.map((line, i) => ({ chunkId: line.chunkId, text: line.text, source: line.source, row: sha(v.vectors.subarray(i * dimension, (i + 1) * dimension)) })),
    summary: await store.getSummary(user, sid),
  };
}

function trashView(items: Awaited<ReturnType<Store['readTrashedMessages']>>): unknown {
  return items.map((item) => ({ message: item.message, trashedAt: item.trashedAt, after: item.after, index: item.index, summary: item.summary, model: item.model, chunks: item.lines.map((l) => l.chunkId), vectors: sha(item.vectors) }));
}

const kinds = { flat: openFlat, postgres: openPg } as const;

describe('readTrashedMessages / restoreTrashedMessage across backends', () => {
  for (const [fromKind, openFrom] of Object.entries(kinds)) {
    for (const [toKind, openTo] of Object.entries(kinds)) {
      it(`${fromKind} -> ${toKind}: the copy's trash reads the same, and untrashing there gives the source's session after its untrash`, async () => {
        const user = 'alice';
        // Postgres to Postgres copies into the same database, so under another user id.
        const toUser = fromKind === 'postgres' && toKind === 'postgres' ? 'copy' : user;
        const from = await openFrom();
        const { sid, trashed } = await source(from, user);
        const to = await openTo();
        await copy(from, to, user, sid, toUser);
        const read = await from.readTrashedMessages(user, sid);
        expect(read.map((item) => item.message.id)).toEqual(trashed);
        expect(read.map((item) => item.lines.length)).toEqual([2, 1, 1]);
        expect(trashView(await to.readTrashedMessages(toUser, sid))).toEqual(trashView(read));
        expect(await state(to, toUser, sid)).toEqual(await state(from, user, sid));
        await untrashAll(from, user, sid, trashed);
        await untrashAll(to, toUser, sid, trashed);
        const after = await state(from, user, sid);
        expect((after as { messages: Message[] }).messages.map((m) => m.content)).toEqual([...Array.from({ length: 8 }, (_, i) => `turn ${i} about tides`), 'a later turn']);
        expect(await state(to, toUser, sid)).toEqual(after);
      });
    }
  }

  it('flat -> postgres -> flat: the trash survives the round trip and untrashes in place with its rows', async () => {
    const a = await openFlat();
    const { sid, trashed } = await source(a, 'round');
    const b = await openPg();
    await copy(a, b, 'round', sid);
    const c = await openFlat();
    await copy(b, c, 'round', sid);
    expect(trashView(await c.readTrashedMessages('round', sid))).toEqual(trashView(await a.readTrashedMessages('round', sid)));
    await untrashAll(a, 'round', sid, trashed);
    await untrashAll(c, 'round', sid, trashed);
    expect(await state(c, 'round', sid)).toEqual(await state(a, 'round', sid));
  });

  it('bad input is a coded error on both backends: rows that do not fit, a bad row, a session that is not there', async () => {
    for (const openOne of [openFlat, openPg]) {
      const a = await openFlat();
      const { sid } = await source(a, 'bad');
      const b = await openOne();
      await copy(a, b, 'bad', sid);
      const [item] = await a.readTrashedMessages('bad', sid);
      await expectCode(b.restoreTrashedMessage('bad', sid, { ...item!, vectors: item!.vectors.subarray(1) }), 'MEMEX_INVALID_INPUT');
      await expectCode(b.restoreTrashedMessage('bad', sid, { ...item!, lines: [{ ...item!.lines[0]!, tokens: -1 }] }), 'MEMEX_INVALID_INPUT');
      await expectCode(b.readTrashedMessages('bad', 'ses_nothere'), 'MEMEX_SESSION_NOT_FOUND');
      await expectCode(b.restoreTrashedMessage('bad', 'ses_nothere', item!), 'MEMEX_SESSION_NOT_FOUND');
      await resetMemexSchema(database.url);
    }
  });

  it('writing the same item again replaces it (a re-run copies nothing twice)', async () => {
    for (const openOne of [openFlat, openPg]) {
      const a = await openFlat();
      const { sid, trashed } = await source(a, 'again');
      const b = await openOne();
      await copy(a, b, 'again', sid);
      for (const item of (await a.readTrashedMessages('again', sid)).reverse()) await b.restoreTrashedMessage('again', sid, item);
      expect(trashView(await b.readTrashedMessages('again', sid))).toEqual(trashView(await a.readTrashedMessages('again', sid)));
      await untrashAll(a, 'again', sid, trashed);
      await untrashAll(b, 'again', sid, trashed);
      expect(await state(b, 'again', sid)).toEqual(await state(a, 'again', sid));
      await resetMemexSchema(database.url);
    }
  });
});
