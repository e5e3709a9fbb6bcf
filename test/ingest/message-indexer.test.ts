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
