import { describe, expect, it } from 'vitest';
import { HashedEmbedder, loadConfig, type Chunk, type Config, type Embedder, type Message, type NewMessage, type SearchOptions, type SearchReport } from '../../src/index.js';
import { Recall, type SearchBackend } from '../../src/index/index.js';
import type { Store } from '../../src/store/index.js';

export interface SearchHarness {
  store: Store;
  /** The backend under test over `store`; undefined for Recall's default (the flat files' index). */
  backend?: SearchBackend;
  close(): Promise<void>;
}

/** What a harness is given: the config every search of the test runs with. */
export type SearchSetup = (config: Config) => Promise<SearchHarness>;

/**
 * The contract every search backend passes (test/index/*-search.test.ts run it per backend). Rows
 * go in through the Store API, embedded by the hashed embedder: a real embedder whose vectors
 * follow the words, so which chunk is nearest is predictable, which is what tests of filters and
 * fusion need. Search runs through `Recall`, as the facade runs it.
 */
export function describeSearchConformance(name: string, setup: SearchSetup): void {
  const embedder = hashed;
  const open = (overrides: ConfigOverrides = {}): Promise<World> => openWorld(setup, overrides);

  describe(`search conformance: ${name}`, () => {
    it('vector, lexical and hybrid modes: what each finds, with text, provenance and component scores', async () => {
      const world = await open();
      try {
        await world.user('alice');
        const s = await world.session('alice');
        const [heron] = await world.say('alice', s, ['the grey heron nests by the river', 'we bought a new kettle for the office', 'quarterly taxes are due in april']);
        const lexical = await world.search('alice', 'heron', { mode: 'lexical' });
        expect(lexical.hits.map((hit) => hit.text)).toEqual(['the grey heron nests by the river']);
        expect(lexical.vectorPath).toBe('none');
        const hit = lexical.hits[0];
        expect(hit).toMatchObject({ sessionId: s, chunkId: `${heron?.id}:0`, span: { start: 0, end: 33 }, part: { index: 0, count: 1 } });
        expect(hit?.source).toMatchObject({ kind: 'message', messageId: heron?.id, role: 'user' });
        expect(hit?.scores).toMatchObject({ vector: null, vectorRank: null, lexicalRank: 1, recency: 1 });
        expect(hit?.scores.lexical).toBeGreaterThan(0);

        const vector = await world.search('alice', 'heron by the river', { mode: 'vector', k: 3 });
        expect(vector.hits).toHaveLength(3);
        expect(vector.hits[0]?.text).toBe('the grey heron nests by the river');
        expect(vector.hits.map((h) => h.scores.vectorRank)).toEqual([1, 2, 3]);
        expect(vector.hits[0]?.score).toBeCloseTo(vector.hits[0]?.scores.vector as number, 5);
        expect(vector.matching).toBe(3);

        const hybrid = await world.search('alice', 'kettle', { k: 3 });
        expect(hybrid.hits[0]?.text).toBe('we bought a new kettle for the office');
        expect(hybrid.hits[0]?.scores).toMatchObject({ vectorRank: 1, lexicalRank: 1 });
        expect(hybrid.hits).toHaveLength(3);
      } finally {
        await world.close();
      }
    });

    it('a word inside a host name, an address or a version is a word (regression: Postgres kept example.com whole)', async () => {
      const world = await open();
      try {
        await world.user('alice');
        const s = await world.session('alice');
        await world.say('alice', s, ['the docs moved to example.com/guide last week', 'mail ops@acme.org about v2.3 release', 'nothing relevant here']);
        const words = async (query: string): Promise<string[]> => (await world.search('alice', query, { mode: 'lexical', k: 5 })).hits.map((hit) => hit.text);
        expect(await words('example')).toEqual(['the docs moved to example.com/guide last week']);
        expect(await words('guide')).toEqual(['the docs moved to example.com/guide last week']);
        expect(await words('acme')).toEqual(['mail ops@acme.org about v2.3 release']);
        expect(await words('v2')).toEqual(['mail ops@acme.org about v2.3 release']);
      } finally {
        await world.close();
      }
    });

    it('hybrid scores are the weighted reciprocal rank fusion of the two ranks', async () => {
      const world = await open();
      try {
        await world.user('alice');
        const s = await world.session('alice');
        await world.say('alice', s, ['apple pie recipe', 'apple orchard tour', 'pear tart', 'banana bread']);
        const report = await world.search('alice', 'apple', { k: 4, rrfK: 10, vectorWeight: 0.5, lexicalWeight: 2, contextWeight: 0.7 });
        for (const hit of report.hits) {
          const expected =
            (hit.scores.vectorRank ? 0.5 / (10 + hit.scores.vectorRank) : 0) +
            (hit.scores.contextRank ? 0.7 / (10 + hit.scores.contextRank) : 0) +
            (hit.scores.lexicalRank ? 2 / (10 + hit.scores.lexicalRank) : 0);
          expect(hit.score).toBeCloseTo(expected, 10);
        }
        expect(report.hits.map((hit) => hit.score)).toEqual([...report.hits.map((hit) => hit.score)].sort((a, b) => b - a));
      } finally {
        await world.close();
      }
    });

    it('a turn is found through the question before it: the contextual list, which holds the filters', async () => {
      // Every message session counts as a conversation here: the gate has its own test below.
      const world = await open({ search: { contextCoherence: -1 } });
      try {
        await world.user('alice');
        const s = await world.session('alice');
        const turns = [
          'did you go to the farmers market on saturday',
          'yes and came home with a basket of peaches',
          'on saturday I cleaned out the garage',
          'saturday was rainy and grey',
          'my sister visits on saturday mornings',
          'the train tickets are booked for june',
          'we painted the kitchen a pale yellow',
          'the new phone has a better camera',
          'grandma sent a postcard from lisbon',
          'the dentist moved my appointment',
        ];
        await world.say('alice', s, turns);
        const peaches = turns[1] as string;
        const found = await world.search('alice', 'farmers market saturday', { k: 5 });
        const answer = found.hits.find((hit) => hit.text === peaches);
        expect(answer?.scores).toMatchObject({ lexical: null, contextRank: 1 });
        expect(answer?.scores.context).toBeGreaterThan(answer?.scores.vector ?? 0);
        // The first turn has no turn before it: it is not in the contextual list.
        const question = found.hits.find((hit) => hit.text === turns[0]);
        expect(question?.scores).toMatchObject({ context: null, contextRank: null, vectorRank: 1, lexicalRank: 1 });
        // Without the list the answer is not among the first five.
        const without = await world.search('alice', 'farmers market saturday', { k: 5, contextWeight: 0 });
        expect(without.hits.map((hit) => hit.text)).not.toContain(peaches);
        expect(without.hits.every((hit) => hit.scores.context === null)).toBe(true);
        // The row after a hit comes only when the filters let it through (the answer is an assistant turn).
        const users = await world.search('alice', 'farmers market saturday', { k: 10, roles: ['user'] });
        expect(users.hits.map((hit) => hit.text)).not.toContain(peaches);
        expect(users.hits.every((hit) => hit.source.kind === 'message' && hit.source.role === 'user')).toBe(true);
        // Only hybrid fuses it.
        for (const mode of ['vector', 'lexical'] as const) expect((await world.search('alice', 'farmers market saturday', { mode })).hits.every((hit) => hit.scores.context === null)).toBe(true);
      } finally {
        await world.close();
      }
    });

    it('only conversations get the contextual list: a session of unrelated passages, and file chunks, do not', async () => {
      const passages = ['the heron nests by the river', 'quarterly taxes are due in april', 'a kettle boils water quickly', 'lisbon has yellow trams', 'the river floods every spring'];
      const gated = async (coherence: number | undefined): Promise<SearchReport> => {
        const world = await open(coherence === undefined ? {} : { search: { contextCoherence: coherence } });
        try {
          await world.user('alice');
          const s = await world.session('alice');
          await world.say('alice', s, passages);
          await world.fileChunk('alice', s, 'the river bank notes');
          await world.fileChunk('alice', s, 'more notes about the river');
          return await world.search('alice', 'river heron', { k: 7 });
        } finally {
          await world.close();
        }
      };
      // The default threshold: consecutive passages share no words, so the session is no conversation.
      expect((await gated(undefined)).hits.every((hit) => hit.scores.context === null)).toBe(true);
      // With every session let through, the passages get it; file chunks never do.
      const open_ = await gated(-1);
      expect(open_.hits.some((hit) => hit.scores.context !== null)).toBe(true);
      expect(open_.hits.filter((hit) => hit.source.kind === 'file').every((hit) => hit.scores.context === null)).toBe(true);
    });

    it('conversations(): sessions whose consecutive messages follow on from each other, judged as the contextual list judges them', async () => {
      const world = await open();
      try {
        await world.user('alice');
        const talk = await world.session('alice');
        await world.say('alice', talk, ['we walked the dog in the park', 'the dog in the park chased a red ball', 'the red ball in the park rolled away', 'the dog found the red ball in the park']);
        const passages = await world.session('alice');
        await world.say('alice', passages, ['the heron nests by the river', 'quarterly taxes are due in april', 'a kettle boils water quickly', 'lisbon has yellow trams']);
        const single = await world.session('alice');
        await world.say('alice', single, ['one message alone']);
        const files = await world.session('alice');
        await world.fileChunk('alice', files, 'the park map');
        await world.fileChunk('alice', files, 'the park map again');
        const at = (coherence: number): Promise<Set<string>> => world.recall.conversations('alice', [talk, passages, single, files, 'ses_missing'], coherence);
        expect(await at(0.4)).toEqual(new Set([talk]));
        expect(await at(-1)).toEqual(new Set([talk, passages]));
        expect(await at(1.01)).toEqual(new Set());
        // Another user's id of the same session finds nothing.
        await world.user('bob');
        expect(await world.recall.conversations('bob', [talk], -1)).toEqual(new Set());
      } finally {
        await world.close();
      }
    });

    it('holds every filter: sessions in and out, sources, roles, time, origin', async () => {
      const world = await open();
      try {
        await world.user('alice');
        const a = await world.session('alice');
        const b = await world.session('alice');
        const imported = await world.session('alice', { origin: { kind: 'imported', source: 'chatgpt', conversationId: 'c1' } });
        await world.say('alice', a, ['lighthouse keeper notes', 'lighthouse lamp repaired'], { start: Date.UTC(2025, 0, 1) });
        await world.say('alice', b, ['lighthouse tour booked'], { start: Date.UTC(2025, 5, 1) });
        await world.say('alice', imported, ['lighthouse postcard'], { start: Date.UTC(2025, 8, 1) });
        await world.fileChunk('alice', b, 'lighthouse manual page');
        const texts = async (options: SearchOptions): Promise<string[]> =>
          (await world.search('alice', 'lighthouse', { k: 20, ...options })).hits.map((hit) => hit.text).sort();
        for (const mode of ['vector', 'lexical', 'hybrid'] as const) {
          expect(await texts({ mode }), mode).toHaveLength(5);
          expect(await texts({ mode, sessionIds: [a] }), mode).toEqual(['lighthouse keeper notes', 'lighthouse lamp repaired']);
          expect(await texts({ mode, excludeSessionIds: [a, imported] }), mode).toEqual(['lighthouse manual page', 'lighthouse tour booked']);
          expect(await texts({ mode, sources: ['file'] }), mode).toEqual(['lighthouse manual page']);
          expect(await texts({ mode, sources: ['message'], roles: ['assistant'] }), mode).toEqual(['lighthouse lamp repaired']);
          // A file chunk has no role and no time: role and time filters leave it out.
          expect(await texts({ mode, roles: ['user', 'assistant'] }), mode).toHaveLength(4);
          expect(await texts({ mode, after: '2025-05-01T00:00:00Z' }), mode).toEqual(['lighthouse postcard', 'lighthouse tour booked']);
          expect(await texts({ mode, before: '2025-06-01T00:00:00Z' }), mode).toEqual(['lighthouse keeper notes', 'lighthouse lamp repaired']);
          // `after` is inclusive and `before` exclusive.
          expect(await texts({ mode, after: '2025-06-01T00:00:00Z', before: '2025-06-01T00:00:00.001Z' }), mode).toEqual(['lighthouse tour booked']);
          expect(await texts({ mode, origin: 'imported' }), mode).toEqual(['lighthouse postcard']);
          expect(await texts({ mode, origin: 'native', sessionIds: [b, imported] }), mode).toEqual(['lighthouse manual page', 'lighthouse tour booked']);
        }
        expect((await world.search('alice', 'lighthouse', { sessionIds: [a] })).matching).toBe(2);
      } finally {
        await world.close();
      }
    });

    it('holds where filters on message metadata; a file chunk is matched as having none', async () => {
      const world = await open();
      try {
        await world.user('alice');
        const s = await world.session('alice');
        await world.say('alice', s, ['garden plan alpha', 'garden plan beta', 'garden plan gamma', 'garden plan delta'], {
          metadata: [{ project: 'x', priority: 1, tags: ['a', 'b'] }, { project: 'y', priority: 5 }, { project: 'x', priority: 3, due: '2025-03-01' }, {}],
        });
        await world.fileChunk('alice', s, 'garden plan file');
        const texts = async (where: SearchOptions['where'], mode: 'vector' | 'lexical' | 'hybrid'): Promise<string[]> =>
          (await world.search('alice', 'garden plan', { k: 20, mode, where })).hits.map((hit) => hit.text.replace('garden plan ', '')).sort();
        for (const mode of ['vector', 'lexical', 'hybrid'] as const) {
          expect(await texts({ project: 'x' }, mode), mode).toEqual(['alpha', 'gamma']);
          expect(await texts({ tags: 'b' }, mode), mode).toEqual(['alpha']);
          expect(await texts({ priority: { $gte: 3 } }, mode), mode).toEqual(['beta', 'gamma']);
          expect(await texts({ priority: { $gt: '1' } }, mode), mode).toEqual([]);
          expect(await texts({ due: { $lt: '2025-04-01' } }, mode), mode).toEqual(['gamma']);
          expect(await texts({ project: { $ne: 'x' } }, mode), mode).toEqual(['beta', 'delta', 'file']);
          expect(await texts({ project: { $in: ['y', 'z'] } }, mode), mode).toEqual(['beta']);
          expect(await texts({ project: { $nin: ['x'] } }, mode), mode).toEqual(['beta', 'delta', 'file']);
          expect(await texts({ project: { $exists: false } }, mode), mode).toEqual(['delta', 'file']);
          expect(await texts({ $or: [{ priority: 5 }, { tags: { $in: ['a'] } }] }, mode), mode).toEqual(['alpha', 'beta']);
          expect(await texts({ $and: [{ project: 'x' }, { priority: { $lt: 2 } }] }, mode), mode).toEqual(['alpha']);
        }
      } finally {
        await world.close();
      }
    });

    for (const exactBelow of [2000, 0]) {
      it(`returns k hits whenever k chunks match, under selective filters (exactBelow ${exactBelow})`, async () => {
        const world = await open({ index: { exactBelow } });
        try {
          await world.user('alice');
          const noise = await world.session('alice');
          const kept = await world.session('alice');
          const many = Array.from({ length: 300 }, (_, i) => `meeting notes about budget item ${i}`);
          await world.say('alice', noise, many);
          // Chunks unlike the query: a graph walk toward the query meets the noise long before them.
          await world.say('alice', kept, Array.from({ length: 12 }, (_, i) => `zebra stripes ${i}`), { metadata: Array.from({ length: 12 }, () => ({ keep: true })) });
          for (const options of [{ sessionIds: [kept] }, { where: { keep: true } }, { excludeSessionIds: [noise] }] as SearchOptions[]) {
            for (const mode of ['vector', 'hybrid'] as const) {
              const report = await world.search('alice', 'budget meeting notes', { k: 10, mode, ...options });
              expect(report.hits, `${mode} ${JSON.stringify(options)}`).toHaveLength(10);
              expect(report.matching).toBe(12);
              expect(report.hits.every((hit) => hit.sessionId === kept)).toBe(true);
            }
          }
          const all = await world.search('alice', 'zebra', { k: 12, mode: 'vector', sessionIds: [kept] });
          expect(all.hits).toHaveLength(12);
        } finally {
          await world.close();
        }
      });
    }

    it('minScore drops what only the vector search found below the floor, and keeps word matches', async () => {
      const world = await open();
      try {
        await world.user('alice');
        const s = await world.session('alice');
        await world.say('alice', s, ['volcano eruption warning', 'volcano', 'cheese sandwich lunch']);
        const vector = await world.search('alice', 'volcano', { mode: 'vector', k: 3 });
        const floor = ((vector.hits[1]?.scores.vector as number) + (vector.hits[2]?.scores.vector as number)) / 2;
        const floored = await world.search('alice', 'volcano', { mode: 'vector', k: 3, minScore: floor });
        expect(floored.hits.map((hit) => hit.text)).toEqual(vector.hits.slice(0, 2).map((hit) => hit.text));
        // Hybrid: the word matches stay even under a floor nothing passes.
        const hybrid = await world.search('alice', 'volcano', { k: 3, minScore: 1 });
        expect(hybrid.hits.map((hit) => hit.text).sort()).toEqual(['volcano', 'volcano eruption warning']);
      } finally {
        await world.close();
      }
    });

    it('relevance is in [0, 1] across queries; minRelevance drops a weak word match and an unrelated chunk but never the only match', async () => {
      const world = await open();
      try {
        await world.user('alice');
        const s = await world.session('alice');
        await world.say('alice', s, ['the grey heron nests by the river', 'the river floods every spring', 'we bought a new kettle for the office', 'quarterly taxes are due in april']);
        const all = await world.search('alice', 'grey heron nests river', { k: 4 });
        for (const hit of all.hits) {
          expect(hit.relevance).toBeGreaterThanOrEqual(0);
          expect(hit.relevance).toBeLessThanOrEqual(1);
        }
        const relevanceOf = (text: string): number => all.hits.find((hit) => hit.text === text)?.relevance ?? -1;
        // Every query term, once, in a chunk of about average length: the ideal score, relevance 1.
        expect(relevanceOf('the grey heron nests by the river')).toBeGreaterThan(0.9);
        expect(relevanceOf('the river floods every spring')).toBeLessThan(0.5);
        const floored = await world.search('alice', 'grey heron nests river', { k: 4, minRelevance: 0.5 });
        expect(floored.hits.map((hit) => hit.text)).toEqual(['the grey heron nests by the river']);
        // One chunk shares a word with the query, and only one of the query's rare words: weak, but the only match.
        const only = await world.search('alice', 'kettle descaling vinegar citric', { k: 4 });
        const kettle = only.hits.find((hit) => hit.text === 'we bought a new kettle for the office');
        expect(kettle?.relevance).toBeLessThan(0.9);
        const kept = await world.search('alice', 'kettle descaling vinegar citric', { k: 4, minRelevance: 0.9 });
        expect(kept.hits.map((hit) => hit.text)).toEqual(['we bought a new kettle for the office']);
      } finally {
        await world.close();
      }
    });

    it('recency weighting multiplies the score by the decay of the message age; file chunks get the floor', async () => {
      const world = await open();
      try {
        await world.user('alice');
        const s = await world.session('alice');
        await world.say('alice', s, ['orchid care old'], { start: Date.UTC(2024, 0, 1) });
        await world.say('alice', s, ['orchid care new'], { start: Date.UTC(2025, 0, 1) });
        await world.fileChunk('alice', s, 'orchid care file');
        const now = '2025-01-11T00:00:00.000Z';
        const report = await world.search('alice', 'orchid care', { k: 3, mode: 'lexical', recency: { halfLifeDays: 10, weight: 0.5, now } });
        const by = new Map(report.hits.map((hit) => [hit.text, hit]));
        expect(by.get('orchid care new')?.scores.recency).toBeCloseTo(0.75, 10);
        expect(by.get('orchid care old')?.scores.recency).toBeCloseTo(0.5 + 0.5 * 0.5 ** (376 / 10), 10);
        expect(by.get('orchid care file')?.scores.recency).toBeCloseTo(0.5, 10);
        expect(report.hits[0]?.text).toBe('orchid care new');
        for (const hit of report.hits) expect(hit.score).toBeCloseTo((hit.scores.lexical as number) * hit.scores.recency, 10);
      } finally {
        await world.close();
      }
    });

    it('MMR puts a different chunk above a near-duplicate', async () => {
      const world = await open();
      try {
        await world.user('alice');
        const s = await world.session('alice');
        await world.say('alice', s, ['solar panel install cost', 'solar panel install cost estimate', 'solar battery storage options']);
        const plain = await world.search('alice', 'solar panel install cost', { k: 2, mode: 'vector' });
        expect(plain.hits.map((hit) => hit.text)).toEqual(['solar panel install cost', 'solar panel install cost estimate']);
        const diverse = await world.search('alice', 'solar panel install cost', { k: 2, mode: 'vector', mmr: { lambda: 0.3 } });
        expect(diverse.hits.map((hit) => hit.text)).toEqual(['solar panel install cost', 'solar battery storage options']);
      } finally {
        await world.close();
      }
    });

    it("never returns another user's chunks, even for the same words", async () => {
      const world = await open();
      try {
        await world.user('alice');
        await world.user('bob');
        const sa = await world.session('alice');
        const sb = await world.session('bob');
        await world.say('alice', sa, ['secret recipe for plum jam']);
        await world.say('bob', sb, ['secret recipe for plum jam', 'plum jam jars']);
        for (const mode of ['vector', 'lexical', 'hybrid'] as const) {
          const report = await world.search('alice', 'plum jam', { k: 10, mode });
          expect(report.hits.map((hit) => hit.sessionId)).toEqual([sa]);
          // Naming bob's session does not reach it.
          expect((await world.search('alice', 'plum jam', { k: 10, mode, sessionIds: [sb] })).hits).toEqual([]);
        }
      } finally {
        await world.close();
      }
    });

    it('deleted messages and sessions are gone from results', async () => {
      const world = await open();
      try {
        await world.user('alice');
        const a = await world.session('alice');
        const b = await world.session('alice');
        const [gone] = await world.say('alice', a, ['walrus colony census', 'walrus tusks']);
        await world.say('alice', b, ['walrus documentary']);
        expect((await world.search('alice', 'walrus', { k: 10 })).hits).toHaveLength(3);
        await world.store.deleteMessage('alice', a, (gone as Message).id);
        await world.recall.noteIndexed('alice', a);
        expect((await world.search('alice', 'walrus', { k: 10 })).hits.map((hit) => hit.text).sort()).toEqual(['walrus documentary', 'walrus tusks']);
        await world.store.deleteSession('alice', b);
        for (const mode of ['vector', 'lexical', 'hybrid'] as const) {
          expect((await world.search('alice', 'walrus', { k: 10, mode })).hits.map((hit) => hit.text), mode).toEqual(['walrus tusks']);
        }
      } finally {
        await world.close();
      }
    });

    it('trashed sessions and messages are gone from results in every mode, and found again once restored (regression: the flat index re-added only the rows after the old tail when a session grew in the middle)', async () => {
      const world = await open();
      try {
        await world.user('alice');
        const a = await world.session('alice');
        const b = await world.session('alice');
        const [first, middle] = await world.say('alice', a, ['walrus colony census', 'walrus tusks', 'walrus diet']);
        await world.say('alice', b, ['walrus documentary']);
        const texts = async (mode: 'vector' | 'lexical' | 'hybrid'): Promise<string[]> => (await world.search('alice', 'walrus', { k: 10, mode })).hits.map((hit) => hit.text).sort();
        const all = ['walrus colony census', 'walrus diet', 'walrus documentary', 'walrus tusks'];
        expect(await texts('hybrid')).toEqual(all);
        await world.store.trashSession('alice', b);
        await world.store.trashMessage('alice', a, (middle as Message).id);
        for (const mode of ['vector', 'lexical', 'hybrid'] as const) expect(await texts(mode), mode).toEqual(['walrus colony census', 'walrus diet']);
        await world.store.untrashSession('alice', b);
        await world.store.untrashMessage('alice', a, (middle as Message).id);
        for (const mode of ['vector', 'lexical', 'hybrid'] as const) expect(await texts(mode), mode).toEqual(all);
        // The first message back in front of the others: the session's rows grow before its last one.
        await world.store.trashMessage('alice', a, (first as Message).id);
        await world.search('alice', 'walrus', { k: 10 });
        await world.store.untrashMessage('alice', a, (first as Message).id);
        expect(await texts('hybrid')).toEqual(all);
      } finally {
        await world.close();
      }
    });

    it('prepare and rebuild report the rows and sessions searched', async () => {
      const world = await open();
      try {
        await world.user('alice');
        const a = await world.session('alice');
        const b = await world.session('alice');
        await world.say('alice', a, ['one', 'two']);
        await world.say('alice', b, ['three']);
        expect(await world.recall.prepare('alice')).toMatchObject({ userId: 'alice', model: embedder.modelId, rows: 3, removed: 0, sessions: 2 });
        expect(await world.recall.rebuild('alice')).toMatchObject({ rows: 3, sessions: 2 });
        const found = await world.search('alice', 'three', { mode: 'lexical' });
        expect(found.hits.map((hit) => hit.text)).toEqual(['three']);
      } finally {
        await world.close();
      }
    });
  });
}

const hashed: Embedder = new HashedEmbedder();

export type ConfigOverrides = { index?: Partial<Config['index']>; search?: Partial<Config['search']> };

/** A harness from `setup` with the hashed embedder's model recorded, searched through `Recall`. */
export async function openWorld(setup: SearchSetup, overrides: ConfigOverrides = {}): Promise<World> {
  const config = loadConfig({ env: {}, cwd: '/', overrides: { index: overrides.index ?? {}, search: overrides.search ?? {} } });
  const harness = await setup(config);
  await harness.store.setEmbeddingModel({ model: hashed.modelId, dimension: hashed.dimension });
  const recall = new Recall({ store: harness.store, embedder: async () => hashed, config, onWarning: () => undefined, ...(harness.backend ? { backend: harness.backend } : {}) });
  return new World(harness, recall, hashed);
}

/** A store with rows in it, written as the ingest path writes them: messages, then their chunk rows. */
export class World {
  constructor(
    private readonly harness: SearchHarness,
    readonly recall: Recall,
    private readonly embedder: Embedder,
  ) {}

  get store(): Store {
    return this.harness.store;
  }

  async user(id: string): Promise<void> {
    await this.store.createUser({ id });
  }

  async session(userId: string, input: Parameters<Store['createSession']>[1] = {}): Promise<string> {
    return (await this.store.createSession(userId, input)).id;
  }

  /**
   * Appends messages (roles alternate user, assistant; a day apart from `start`) with one chunk each.
   */
  async say(userId: string, sessionId: string, texts: string[], options: { start?: number; metadata?: Record<string, unknown>[] } = {}): Promise<Message[]> {
    const start = options.start ?? Date.UTC(2025, 0, 1);
    const input: NewMessage[] = texts.map((content, i) => ({
      role: i % 2 === 0 ? 'user' : 'assistant',
      content,
      createdAt: new Date(start + i * 86_400_000).toISOString(),
      ...(options.metadata?.[i] ? { metadata: options.metadata[i] as Record<string, never> } : {}),
    }));
    const messages = await this.store.appendMessages(userId, sessionId, input);
    const chunks: Chunk[] = messages.map((message) => ({
      chunkId: `${message.id}:0`,
      source: { kind: 'message', messageId: message.id, role: message.role, createdAt: message.createdAt },
      part: { index: 0, count: 1 },
      span: { start: 0, end: message.content.length },
      text: message.content,
      tokens: this.embedder.countTokens(message.content),
    }));
    await this.appendRows(userId, sessionId, chunks);
    return messages;
  }

  /** A stored text file with one chunk of `text`. */
  async fileChunk(userId: string, sessionId: string, text: string): Promise<void> {
    const { file } = await this.store.putFile(userId, sessionId, { source: { bytes: Buffer.from(`${text}\n`) }, name: 'notes.txt' });
    await this.appendRows(userId, sessionId, [
      { chunkId: `${file.id}:1:0`, source: { kind: 'file', fileId: file.id, page: 1 }, part: { index: 0, count: 1 }, span: { start: 0, end: text.length }, text, tokens: this.embedder.countTokens(text) },
    ]);
  }

  async search(userId: string, query: string, options: SearchOptions = {}): Promise<SearchReport> {
    return this.recall.search(userId, query, options);
  }

  async close(): Promise<void> {
    await this.recall.close();
    await this.harness.close();
  }

  private async appendRows(userId: string, sessionId: string, chunks: Chunk[]): Promise<void> {
    const vectors = await this.embedder.embed(chunks.map((chunk) => chunk.text));
    await this.store.appendVectors(userId, sessionId, { model: this.embedder.modelId, chunks, vectors });
    await this.recall.noteIndexed(userId, sessionId);
  }
}
