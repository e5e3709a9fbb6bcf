import { describe, expect, it } from 'vitest';
import { HashedEmbedder } from '../../src/embedding/index.js';
import { MessageIndexer } from '../../src/ingest/message-indexer.js';
import type { Message } from '../../src/core/index.js';
import type { Store } from '../../src/store/index.js';

/** A FAKE store for the indexer, named as one: each session has one message without rows until it is embedded. */
function fakeStore(): { store: Store; embedded: string[] } {
  const embedded: string[] = [];
  const store = {
    unembeddedMessages: (_userId: string, sessionId: string) =>
      Promise.resolve(embedded.includes(sessionId) ? [] : [{ v: 1, id: `msg_${sessionId}`, sessionId, role: 'assistant', content: 'a reply', createdAt: '2026-01-01T00:00:00.000Z', metadata: {}, attachments: [] } as unknown as Message]),
    appendVectors: (_userId: string, sessionId: string) => {
      embedded.push(sessionId);
      return Promise.resolve({});
    },
  } as unknown as Store;
  return { store, embedded };
}

function indexer(store: Store): MessageIndexer {
  const embedder = new HashedEmbedder();
  return new MessageIndexer({ store, embedder: () => Promise.resolve(embedder), chunking: { maxTokens: null, overlapTokens: null } });
}

const tick = (ms = 30): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('deferred embedding (a chat turn\'s reply)', () => {
  it('waits for its time, or runs at once when its session is scheduled, flushed or settled for', async () => {
    const { store, embedded } = fakeStore();
    const work = indexer(store);
    work.defer('u', 's1', 60_000);
    work.defer('u', 's2', 60_000);
    work.defer('u', 's3', 60_000);
    work.defer('v', 's4', 60_000);
    await tick();
    expect(embedded).toEqual([]);
    // A settle for another session of the user takes the user's deferred work along, but not the session's own.
    await work.settleUser('u', 's1');
    expect(embedded.sort()).toEqual(['s2', 's3']);
    work.schedule('u', 's1');
    await work.flush('u');
    expect(embedded).toContain('s1');
    expect(embedded).not.toContain('s4');
    await work.flush();
    expect(embedded).toContain('s4');
  });

  it('runs by itself after the delay, once however often it was deferred', async () => {
    const { store, embedded } = fakeStore();
    const work = indexer(store);
    work.defer('u', 's1', 20);
    work.defer('u', 's1', 20);
    await tick(80);
    await work.flush();
    expect(embedded).toEqual(['s1']);
  });
});

/**
 * A FAKE store, named as one, closer to the real ones: sessions of messages, rows written per
 * message in call order, `unembeddedMessages` as the stores answer it (messages without rows, after
 * a given one), and writes that take a while (or fail) on demand.
 */
function sessionsStore(sessions: Record<string, number>): {
  store: Store;
  rows: Map<string, string[]>;
  events: string[];
  add(sessionId: string, count: number): void;
  writeDelayMs: number;
  failNextWrite: boolean;
} {
  const messages = new Map<string, Message[]>();
  const rows = new Map<string, string[]>();
  const events: string[] = [];
  const state = {
    store: null as unknown as Store,
    rows,
    events,
    writeDelayMs: 0,
    failNextWrite: false,
    add(sessionId: string, count: number): void {
      const list = messages.get(sessionId) ?? [];
      for (let i = 0; i < count; i++) {
        const n = list.length;
        list.push({ v: 1, id: `m_${sessionId}_${String(n).padStart(4, '0')}`, sessionId, role: 'user', content: `message ${n} of ${sessionId}`, createdAt: '2026-01-01T00:00:00.000Z', metadata: {}, attachments: [] } as unknown as Message);
      }
      messages.set(sessionId, list);
      if (!rows.has(sessionId)) rows.set(sessionId, []);
    },
  };
  for (const [id, count] of Object.entries(sessions)) state.add(id, count);
  state.store = {
    unembeddedMessages: (_userId: string, sessionId: string, options: { limit: number; after?: string }) => {
      const have = new Set(rows.get(sessionId));
      const list = messages.get(sessionId) ?? [];
      const start = options.after ? list.findIndex((m) => m.id === options.after) + 1 : 0;
      events.push(`read ${sessionId}`);
      return Promise.resolve(list.slice(start).filter((m) => !have.has(m.id)).slice(0, options.limit));
    },
    appendVectors: async (_userId: string, sessionId: string, batch: { chunks: { source: { messageId: string } }[] }) => {
      const first = batch.chunks[0]?.source.messageId;
      events.push(`write ${sessionId} from ${first}`);
      await new Promise((resolve) => setTimeout(resolve, state.writeDelayMs));
      if (state.failNextWrite) {
        state.failNextWrite = false;
        throw new Error('disk full (a FAKE failure)');
      }
      rows.get(sessionId)?.push(...batch.chunks.map((chunk) => chunk.source.messageId));
      events.push(`written ${sessionId} from ${first}`);
      return {};
    },
  } as unknown as Store;
  return state;
}

/** The hashed embedder, counting its calls and saying when each starts. */
function countingIndexer(store: Store, events: string[] = []): { work: MessageIndexer; calls: () => number } {
  const embedder = new HashedEmbedder();
  let calls = 0;
  const counting = Object.assign(Object.create(embedder) as HashedEmbedder, {
    embed: (texts: readonly string[]) => {
      calls++;
      events.push(`embed ${texts.length} from ${texts[0]}`);
      return embedder.embed(texts);
    },
  });
  return { work: new MessageIndexer({ store, embedder: () => Promise.resolve(counting), chunking: { maxTokens: null, overlapTokens: null } }), calls: () => calls };
}

describe('the indexer pipeline', () => {
  it('embeds small sessions together: one model call covers several sessions, and each gets its own rows', async () => {
    const fake = sessionsStore(Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`s${i}`, 4])));
    const { work, calls } = countingIndexer(fake.store);
    for (let i = 0; i < 12; i++) work.schedule('u', `s${i}`);
    await work.flush();
    for (let i = 0; i < 12; i++) expect(fake.rows.get(`s${i}`)).toEqual([0, 1, 2, 3].map((n) => `m_s${i}_000${n}`));
    expect(calls()).toBeLessThanOrEqual(3);
  });

  it("reads and embeds a long session's next round while the last one's rows are written, every row once and in order", async () => {
    const fake = sessionsStore({ long: 1200 });
    fake.writeDelayMs = 40;
    const { work } = countingIndexer(fake.store, fake.events);
    work.schedule('u', 'long');
    await work.flush();
    expect(fake.rows.get('long')).toEqual(Array.from({ length: 1200 }, (_, n) => `m_long_${String(n).padStart(4, '0')}`));
    // The second round's model call starts before the first round's rows are written.
    const embeds = fake.events.flatMap((event, at) => (event.startsWith('embed ') ? [at] : []));
    expect(embeds.length).toBeGreaterThan(1);
    const secondEmbed = embeds[1]!;
    expect(secondEmbed).toBeLessThan(fake.events.indexOf('written long from m_long_0000'));
  });

  it('reads a session appended to while its rows are written again only once they are: no message gets two rows', async () => {
    const fake = sessionsStore({ s: 5 });
    fake.writeDelayMs = 50;
    const { work } = countingIndexer(fake.store);
    work.schedule('u', 's');
    await tick(10);
    fake.add('s', 3);
    work.schedule('u', 's');
    await work.flush();
    expect(fake.rows.get('s')).toEqual(Array.from({ length: 8 }, (_, n) => `m_s_000${n}`));
  });

  it("drops a session's later rounds after a failed write, reports it to flush, and catches up on the next schedule", async () => {
    const fake = sessionsStore({ long: 1200, other: 3 });
    fake.writeDelayMs = 5;
    fake.failNextWrite = true;
    const { work } = countingIndexer(fake.store);
    work.schedule('u', 'long');
    work.schedule('u', 'other');
    await expect(work.flush()).rejects.toMatchObject({ message: expect.stringMatching(/cannot embed session long/) });
    // Nothing of `long` after the failed round (its rows would be out of order); `other` is whole.
    expect(fake.rows.get('long')).toEqual([]);
    expect(fake.rows.get('other')).toHaveLength(3);
    work.schedule('u', 'long');
    await work.flush();
    expect(fake.rows.get('long')).toHaveLength(1200);
    expect(new Set(fake.rows.get('long')).size).toBe(1200);
  });
});
