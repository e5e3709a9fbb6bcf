import { afterEach, describe, expect, it } from 'vitest';
import { HashedEmbedder, Memex, type MemexOptions, type Reranker, type SearchHit } from '../../src/index.js';
import { BACKENDS, backendConfig, type Backend } from '../helpers/backends.js';
import { expectCode } from '../helpers/errors.js';
import { modelEnv } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';

const opened: Memex[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((m) => m.close()));
});

/** The hashed embedder is a real (lexical) embedder: fast and deterministic, for the seam's mechanics. */
const hashed = new HashedEmbedder();

const TURNS = [
  'The harbour oyster bar near the lighthouse opens at seven.',
  'We walked along the harbour after dinner.',
  'The lighthouse keeper gave us a tour of the harbour.',
  'My sister booked a table at the harbour restaurant.',
  'The ferry leaves the harbour every hour in summer.',
  'Fishing boats crowd the harbour in the morning.',
  'I bought smoked fish from a stall by the harbour.',
  'The harbour wall was built two centuries ago.',
  'Seagulls stole my chips on the harbour steps.',
  'A storm flooded the harbour car park last winter.',
  'The museum shows paintings of the old harbour.',
  'Kayaks can be rented at the harbour slipway.',
];

async function open(backend: Backend, options: Partial<MemexOptions> = {}): Promise<{ memex: Memex; sessionId: string; now: string }> {
  const dataDir = await tempDir('memex-rerank-');
  const memex = await Memex.open({ dataDir, env: modelEnv, embedder: hashed, onWarning: () => undefined, config: await backendConfig(backend, dataDir), ...options });
  opened.push(memex);
  await memex.users.create({ id: 'alice' });
  const old = await memex.sessions.create('alice', { title: 'harbour' });
  await memex.messages.appendMany('alice', old.id, TURNS.map((content, i) => ({ role: i % 2 === 0 ? ('user' as const) : ('assistant' as const), content })));
  const now = await memex.sessions.create('alice', { title: 'now' });
  await memex.messages.append('alice', now.id, { role: 'user', content: 'Hello again.' });
  await memex.flush();
  return { memex, sessionId: old.id, now: now.id };
}

const ids = (hits: readonly { chunkId: string }[]): string[] => hits.map((h) => h.chunkId);
const QUERY = 'harbour lighthouse';
/** A caller's reranker: the candidates best last (a plain reversal), with a score of its own. */
const reverse: Reranker = (_query, hits) => [...hits].reverse().map((hit, i) => ({ sessionId: hit.sessionId, chunkId: hit.chunkId, score: 100 - i }));
const identity: Reranker = (_query, hits) => hits;

describe.each(BACKENDS)('the rerank seam on %s', (backend) => {
  it("a caller's reranker reorders search hits from a pool of rerankCandidates, and its scores are the hits' scores", async () => {
    const { memex } = await open(backend);
    const pool = (await memex.search('alice', QUERY, { k: 10 })).hits;
    expect(pool.length).toBe(10);
    const seen: SearchHit[][] = [];
    const report = await memex.search('alice', QUERY, {
      k: 4,
      rerankCandidates: 10,
      reranker: (query, hits) => {
        expect(query).toBe(QUERY);
        seen.push([...hits]);
        return reverse(query, hits);
      },
    });
    expect(ids(seen[0] ?? [])).toEqual(ids(pool));
    expect(ids(report.hits)).toEqual(ids(pool).reverse().slice(0, 4));
    expect(report.hits.map((h) => h.score)).toEqual([100, 99, 98, 97]);
    // Everything else about a hit is the search's.
    const last = pool[pool.length - 1] as SearchHit;
    expect(report.hits[0]).toEqual({ ...last, score: 100 });
  });

  it("a window's memories are the reranker's choice, in a subset too", async () => {
    const { memex, now } = await open(backend);
    // The reranker keeps only the turn about kayaks: the window recalls that one memory.
    const kayaks: Reranker = (_query, hits) => hits.filter((hit) => hit.text.includes('Kayaks'));
    const window = await memex.buildContext('alice', { sessionId: now, budget: 2000, query: QUERY, reranker: kayaks });
    expect(window.report.memories.map((m) => m.text)).toEqual([TURNS[11]]);
    // Without it, the same window recalls more, the lighthouse turns first among them.
    const plain = await memex.buildContext('alice', { sessionId: now, budget: 2000, query: QUERY });
    expect(plain.report.memories.length).toBeGreaterThan(1);
  });

  it('a reranker given to Memex applies to every search and window; null turns it off for one call', async () => {
    const { memex, now } = await open(backend, { reranker: reverse });
    const plain = (await memex.search('alice', QUERY, { k: 3, reranker: null })).hits;
    // The pool is `search.rerankCandidates` (50): every chunk of this small user.
    const pool = (await memex.search('alice', QUERY, { k: 50, reranker: null })).hits;
    const reranked = (await memex.search('alice', QUERY, { k: 3 })).hits;
    expect(ids(reranked)).toEqual(ids(pool).reverse().slice(0, 3));
    expect(ids(reranked)).not.toEqual(ids(plain));
    const window = await memex.buildContext('alice', { sessionId: now, budget: 2000, query: QUERY, memories: 2 });
    // The window's own turn ("Hello again.") is shown as a recent turn, not as a memory.
    const expected = ids(pool.filter((hit) => hit.sessionId !== now)).reverse().slice(0, 2);
    expect(window.report.memories.map((m) => m.chunkId).sort()).toEqual(expected.sort());
  });

  it('a throwing reranker is MEMEX_RERANK_FAILED, for a search and for a window', async () => {
    const { memex, now } = await open(backend);
    const throws: Reranker = () => {
      throw new Error('cross-encoder out of memory');
    };
    const rejects: Reranker = () => Promise.reject(new Error('timeout'));
    const failed = await expectCode(memex.search('alice', QUERY, { reranker: throws }), 'MEMEX_RERANK_FAILED');
    expect((failed.cause as Error).message).toBe('cross-encoder out of memory');
    await expectCode(memex.search('alice', QUERY, { reranker: rejects }), 'MEMEX_RERANK_FAILED');
    await expectCode(memex.buildContext('alice', { sessionId: now, budget: 2000, query: QUERY, reranker: throws }), 'MEMEX_RERANK_FAILED');
  });

  it('a reranker that returns a hit it was not given (another user\'s, made up, twice, or not an array) is rejected', async () => {
    const { memex, now } = await open(backend);
    await memex.users.create({ id: 'bob' });
    const bobs = await memex.sessions.create('bob');
    await memex.messages.append('bob', bobs.id, { role: 'user', content: 'My harbour lighthouse secret.' });
    await memex.flush();
    const [bobHit] = (await memex.search('bob', QUERY, { k: 1 })).hits;
    expect(bobHit).toBeDefined();
    const foreign: Reranker = (_query, hits) => [bobHit as SearchHit, ...hits];
    await expectCode(memex.search('alice', QUERY, { reranker: foreign }), 'MEMEX_RERANK_INVALID');
    await expectCode(memex.buildContext('alice', { sessionId: now, budget: 2000, query: QUERY, reranker: foreign }), 'MEMEX_RERANK_INVALID');
    const madeUp: Reranker = (_query, hits) => [{ ...(hits[0] as SearchHit), chunkId: 'not-a-chunk:0' }];
    await expectCode(memex.search('alice', QUERY, { reranker: madeUp }), 'MEMEX_RERANK_INVALID');
    const twice: Reranker = (_query, hits) => [hits[0] as SearchHit, hits[0] as SearchHit];
    await expectCode(memex.search('alice', QUERY, { reranker: twice }), 'MEMEX_RERANK_INVALID');
    const notArray = (() => Promise.resolve({ hits: [] })) as unknown as Reranker;
    await expectCode(memex.search('alice', QUERY, { reranker: notArray }), 'MEMEX_RERANK_INVALID');
    const badScore: Reranker = (_query, hits) => [{ sessionId: (hits[0] as SearchHit).sessionId, chunkId: (hits[0] as SearchHit).chunkId, score: Number.NaN }];
    await expectCode(memex.search('alice', QUERY, { reranker: badScore }), 'MEMEX_RERANK_INVALID');
    await expectCode(memex.search('alice', QUERY, { reranker: identity, rerankCandidates: 0 }), 'MEMEX_INVALID_INPUT');
  });

  it('no reranker is the search and window as before: the same as one that keeps the order', async () => {
    const { memex, now } = await open(backend);
    const none = await memex.search('alice', QUERY, { k: 5 });
    const off = await memex.search('alice', QUERY, { k: 5, reranker: null });
    const kept = await memex.search('alice', QUERY, { k: 5, reranker: identity });
    expect(off).toEqual(none);
    expect(kept).toEqual(none);
    const window = await memex.buildContext('alice', { sessionId: now, budget: 2000, query: QUERY });
    const keptWindow = await memex.buildContext('alice', { sessionId: now, budget: 2000, query: QUERY, reranker: identity });
    expect(keptWindow.messages).toEqual(window.messages);
    expect(keptWindow.report.memories).toEqual(window.report.memories);
  });
});
