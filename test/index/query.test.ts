import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/index.js';
import { PostgresSearch } from '../../src/index/index.js';
import { feedbackQuery, findDates, questionCore, vectorTexts } from '../../src/index/query.js';
import { FlatFileStore } from '../../src/store/index.js';
import { PostgresStore } from '../../src/store/postgres/index.js';
import { expectCode } from '../helpers/errors.js';
import { resetMemexSchema, startTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';
import { openWorld, type SearchHarness, type SearchSetup, type World } from './search-conformance.js';

const day = (iso: string): string => new Date(Date.parse(iso)).toISOString().slice(0, 10);
const spans = (text: string, now: string): string[] => findDates(text, Date.parse(now)).ranges.map((r) => `${day(new Date(r.start).toISOString())}..${day(new Date(r.end).toISOString())}`);

describe('findDates: dates and relative times in a query, against an explicit now', () => {
  const now = '2023-09-01T12:00:00Z';

  it('absolute dates: a day, a month, a season, a year', () => {
    expect(spans('Who did Maria have dinner with on May 3, 2023?', now)).toEqual(['2023-05-03..2023-05-04']);
    expect(spans('What movie did Joanna watch on 1 May, 2022?', now)).toEqual(['2022-05-01..2022-05-02']);
    expect(spans('Which countries did James visit in July 2022?', now)).toEqual(['2022-07-01..2022-08-01']);
    expect(spans('What state did Joanna visit in summer 2021?', now)).toEqual(['2021-06-01..2021-09-01']);
    expect(spans('How often did she go to the beach in 2023?', now)).toEqual(['2023-01-01..2024-01-01']);
  });

  it('a month or day without a year is its latest one at or before now; "last May" a year back when asked in May', () => {
    expect(spans('When did Melanie go camping in June?', now)).toEqual(['2023-06-01..2023-07-01']);
    expect(spans('What happened in October?', now)).toEqual(['2022-10-01..2022-11-01']);
    expect(spans('What happened on 8 May?', now)).toEqual(['2023-05-08..2023-05-09']);
    expect(spans('What did we do last May?', '2023-05-20T00:00:00Z')).toEqual(['2022-05-01..2022-06-01']);
  });

  it('relative times: yesterday, last month, two weeks before a date, years ago', () => {
    expect(spans('What did I eat yesterday?', now)).toEqual(['2023-08-31..2023-09-01']);
    expect(spans('What did I read last month?', now)).toEqual(['2023-08-01..2023-09-01']);
    // About two weeks before: a week wide around the day two weeks earlier.
    expect(spans('What happened two weeks before 23 August 2023?', now)).toEqual(['2023-08-05..2023-08-13']);
    const [ago] = findDates('Where did Caroline move from 4 years ago?', Date.parse(now)).ranges;
    expect(ago && ago.start < Date.parse('2019-09-01T12:00:00Z') && ago.end > Date.parse('2019-09-01T12:00:00Z')).toBe(true);
  });

  it('the date words leave the query; words that only look like months stay', () => {
    expect(findDates('Who did Maria have dinner with on May 3, 2023?', Date.parse(now)).rest).toBe('Who did Maria have dinner with?');
    expect(findDates('You may go now', Date.parse(now))).toEqual({ ranges: [], rest: 'You may go now' });
    expect(findDates('Why did they march to the square?', Date.parse(now)).ranges).toEqual([]);
  });
});

describe('feedbackQuery: the second pass adds the terms the first hits share', () => {
  const analysis = { stopwords: true, stemming: true };

  it('adds a word two of the top chunks share, not one chunk’s odd word nor the speaker label', () => {
    const expanded = feedbackQuery('dog', ['Mel: my dog rex loves the beach', 'Mel: dog rex chased a ball', 'Mel: the dog sleeps a lot'], analysis, 5);
    expect(expanded.split(' ')).toContain('rex');
    expect(expanded.split(' ')).not.toContain('mel');
    expect(expanded.split(' ')).not.toContain('ball');
    expect(expanded.startsWith('dog dog ')).toBe(true);
  });

  it('leaves the query alone when nothing is shared', () => {
    expect(feedbackQuery('dog', ['my dog sleeps', 'a dog barks'], analysis, 5)).toBe('dog');
  });
});

describe('questionCore: a question without its scaffolding, for the vector side', () => {
  it('takes out the question word, the auxiliaries after it, do-support and the question mark', () => {
    expect(questionCore('What did Melanie paint recently?')).toBe('Melanie paint recently');
    expect(questionCore("What is Caroline's identity?")).toBe("Caroline's identity");
    expect(questionCore('How many children does Melanie have?')).toBe('children Melanie have');
    expect(questionCore('When did Caroline go to the LGBTQ support group?')).toBe('Caroline go to the LGBTQ support group');
    expect(questionCore('Would Caroline likely pursue writing as a career option?')).toBe('Caroline likely pursue writing as a career option');
    // Search-engine style, lower case and no question mark: the question word makes it a question.
    expect(questionCore('what is the most common blood type in sweden')).toBe('the most common blood type in sweden');
  });

  it('leaves a statement alone, even one that opens with a name that is also an auxiliary', () => {
    expect(questionCore('I own a Jeep.')).toBe('I own a Jeep.');
    expect(questionCore('Will did the dishes')).toBe('Will did the dishes');
    expect(questionCore('melanie paint recently')).toBe('melanie paint recently');
  });

  it('vectorTexts: keep embeds the question, strip its core, both the two (one when they are the same)', () => {
    const question = 'What did Melanie paint recently?';
    expect(vectorTexts(question, { questionWords: 'keep' })).toEqual([question]);
    expect(vectorTexts(question, { questionWords: 'strip' })).toEqual(['Melanie paint recently']);
    expect(vectorTexts(question, { questionWords: 'both' })).toEqual([question, 'Melanie paint recently']);
    expect(vectorTexts('I own a Jeep.', { questionWords: 'both' })).toEqual(['I own a Jeep.']);
  });
});

let server: TestDatabase;
beforeAll(async () => {
  server = await startTestDatabase();
}, 60_000);
afterAll(async () => {
  await server.stop();
});

const flat: SearchSetup = async () => {
  const store = await FlatFileStore.open({ dataDir: await tempDir(), fsync: 'none' });
  return { store, close: () => store.close() };
};
async function postgres(config: Config): Promise<SearchHarness> {
  await resetMemexSchema(server.url);
  const store = await PostgresStore.open({ url: server.url, hnsw: { m: config.index.m, efConstruction: config.index.efConstruction }, maxConnections: 4 });
  return { store, backend: new PostgresSearch({ pool: store.database.pool, config }), close: () => store.close() };
}

describe.each([
  ['flat files', flat],
  ['PostgreSQL', postgres],
] as const)('query understanding in search: %s', (_name, setup) => {
  /** Hiking in May (one mention) and in July (three): the July chunk ranks first on the words alone. */
  async function hikes(world: World): Promise<void> {
    await world.user('alice');
    const s = await world.session('alice');
    await world.say('alice', s, ['we went hiking in the hills', 'the office printer jammed again'], { start: Date.UTC(2023, 4, 10) });
    await world.say('alice', s, ['hiking hiking, we went hiking by the lake', 'my sister bought a bicycle'], { start: Date.UTC(2023, 6, 10) });
    await world.say('alice', s, ['May 2023 was a rainy month'], { start: Date.UTC(2023, 7, 20) });
  }
  const now = '2023-09-01T00:00:00.000Z';

  it('a date phrase boosts the chunks written in its range, with an explicit now', async () => {
    const world = await openWorld(setup);
    try {
      await hikes(world);
      const off = await world.search('alice', 'Where did we go hiking in May?', { k: 3, understand: { dates: 'off', now } });
      // Without it, the words decide: July's hikes (or the chunk naming May) outrank May's hike.
      expect(off.hits[0]?.text).not.toBe('we went hiking in the hills');
      const on = await world.search('alice', 'Where did we go hiking in May?', { k: 3, understand: { dates: 'boost', dateWeight: 0.5, now } });
      expect(on.hits[0]?.text).toBe('we went hiking in the hills');
      // A boost, not a filter: July's chunk still comes back.
      expect(on.hits.map((hit) => hit.text)).toContain('hiking hiking, we went hiking by the lake');
      // Relative to the asking time: "yesterday" is 10 May when asked on 11 May.
      const yesterday = await world.search('alice', 'where did we go hiking yesterday', { k: 3, understand: { dates: 'boost', dateWeight: 0.5, now: '2023-05-11T09:00:00Z' } });
      expect(yesterday.hits[0]?.text).toBe('we went hiking in the hills');
    } finally {
      await world.close();
    }
  });

  it('dates: filter keeps only the chunks written in the range (and within the caller’s after/before)', async () => {
    const world = await openWorld(setup);
    try {
      await hikes(world);
      const report = await world.search('alice', 'hiking in July 2023', { k: 5, understand: { dates: 'filter', dateSlackDays: 0, now } });
      expect(report.hits.map((hit) => hit.text)).toEqual(['hiking hiking, we went hiking by the lake', 'my sister bought a bicycle']);
      const none = await world.search('alice', 'hiking in July 2023', { k: 5, after: '2023-08-01T00:00:00Z', understand: { dates: 'filter', now } });
      expect(none.hits).toEqual([]);
    } finally {
      await world.close();
    }
  });

  it('the date words leave the lexical query: a chunk that only names the month is not a match', async () => {
    const world = await openWorld(setup);
    try {
      await hikes(world);
      // Kept by default: stripping them cost LoCoMo recall (bench/quality.ts --understand-grid).
      const kept = await world.search('alice', 'hiking in May 2023', { k: 5, mode: 'lexical', understand: { now } });
      expect(kept.hits.map((hit) => hit.text)).toContain('May 2023 was a rainy month');
      const stripped = await world.search('alice', 'hiking in May 2023', { k: 5, mode: 'lexical', understand: { stripDates: true, now } });
      expect(stripped.hits.map((hit) => hit.text)).not.toContain('May 2023 was a rainy month');
      expect(stripped.hits.length).toBeGreaterThan(0);
    } finally {
      await world.close();
    }
  });

  it('feedback: a second lexical pass finds a chunk that shares no word with the query but shares the first hits’ words', async () => {
    const world = await openWorld(setup);
    try {
      await world.user('alice');
      const s = await world.session('alice');
      await world.say('alice', s, ['my dog rex loves the beach', 'dog rex chased the ball on the beach', 'rex swam at the beach all afternoon', 'the tax form is due friday']);
      const off = await world.search('alice', 'dog', { k: 5, mode: 'lexical' });
      expect(off.hits.map((hit) => hit.text)).not.toContain('rex swam at the beach all afternoon');
      const on = await world.search('alice', 'dog', { k: 5, mode: 'lexical', understand: { feedback: true } });
      expect(on.hits.map((hit) => hit.text)).toContain('rex swam at the beach all afternoon');
      expect(on.hits.map((hit) => hit.text)).not.toContain('the tax form is due friday');
    } finally {
      await world.close();
    }
  });

  it("feedback 'documents': the second pass runs only when most top hits are file chunks or in sessions that are not conversations", async () => {
    const world = await openWorld(setup);
    try {
      await world.user('alice');
      const s = await world.session('alice');
      await world.say('alice', s, ['my dog rex loves the beach', 'dog rex chased the ball on the beach', 'rex swam at the beach all afternoon', 'the tax form is due friday']);
      const texts = async (understand: object, contextCoherence: number): Promise<string[]> =>
        (await world.search('alice', 'dog', { k: 5, mode: 'lexical', contextCoherence, understand: { feedback: 'documents', feedbackDocs: 3, ...understand } })).hits.map((hit) => hit.text);
      // No session passes a coherence of 1: the hits are documents, and the query is expanded.
      expect(await texts({}, 1)).toContain('rex swam at the beach all afternoon');
      // Every session with two messages passes -1: a conversation, searched as asked.
      expect(await texts({}, -1)).not.toContain('rex swam at the beach all afternoon');

      // File chunks are documents wherever they are.
      const t = await world.session('alice');
      await world.say('alice', t, ['rex swam in the lake', 'the weather turned cold']);
      await world.fileChunk('alice', t, 'dog rex notes from the vet');
      await world.fileChunk('alice', t, 'dog rex vaccination card');
      await world.fileChunk('alice', t, 'dog food brands compared');
      const files = await world.search('alice', 'dog', { k: 8, mode: 'lexical', contextCoherence: -1, understand: { feedback: 'documents', feedbackDocs: 3 } });
      expect(files.hits.slice(0, 3).every((hit) => hit.source.kind === 'file' || hit.text.includes('dog'))).toBe(true);
      expect(files.hits.map((hit) => hit.text)).toContain('rex swam in the lake');
    } finally {
      await world.close();
    }
  });

  it('names: drop takes a capitalised name out of the lexical query', async () => {
    const world = await openWorld(setup);
    try {
      await world.user('alice');
      const s = await world.session('alice');
      await world.say('alice', s, ['Caroline: hello there', 'Melanie: I painted a sunset', 'Caroline: nice weather']);
      const kept = await world.search('alice', 'What did Caroline paint?', { k: 5, mode: 'lexical' });
      expect(kept.hits.map((hit) => hit.text)).toContain('Caroline: hello there');
      const dropped = await world.search('alice', 'What did Caroline paint?', { k: 5, mode: 'lexical', understand: { names: 'drop' } });
      expect(dropped.hits.map((hit) => hit.text)).toEqual(['Melanie: I painted a sunset']);
    } finally {
      await world.close();
    }
  });

  it('speakers: a chunk spoken by the person the question names is lifted above one that only mentions them', async () => {
    const world = await openWorld(setup);
    try {
      await world.user('alice');
      const s = await world.session('alice');
      await world.say('alice', s, ['Caroline: painting painting sunsets with Melanie at the painting club', 'Melanie: I tried painting once', 'Caroline: the weather is grey', 'Melanie: my kids love dinosaurs']);
      const off = await world.search('alice', "What is Melanie's painting like?", { k: 2, understand: { speakers: 'off' } });
      expect(off.hits[0]?.text).toBe('Caroline: painting painting sunsets with Melanie at the painting club');
      const on = await world.search('alice', "What is Melanie's painting like?", { k: 2, understand: { speakerWeight: 1 } });
      expect(on.hits[0]?.text).toBe('Melanie: I tried painting once');
      expect(on.hits[0]?.score).toBeGreaterThan(on.hits[1]?.score ?? Infinity);
    } finally {
      await world.close();
    }
  });

  it('questionWords: strip ranks by the question’s core on the vector side, both by the mean of the two vectors, the lexical side as asked', async () => {
    const world = await openWorld(setup);
    try {
      await world.user('alice');
      const s = await world.session('alice');
      await world.say('alice', s, ['Melanie: I painted a sunset over the lake last week', 'Caroline: what did you think of the parade?', 'Melanie: the kids loved the museum', 'Caroline: I am reading a book about adoption']);
      const question = 'What did Melanie paint recently?';
      const scores = async (query: string, questionWords: 'keep' | 'strip' | 'both'): Promise<Map<string, number>> => {
        const report = await world.search('alice', query, { mode: 'vector', k: 4, understand: { questionWords } });
        return new Map(report.hits.map((hit) => [hit.text, hit.scores.vector ?? NaN]));
      };
      const asked = await scores(question, 'keep');
      const stripped = await scores(question, 'strip');
      expect(stripped).toEqual(await scores('Melanie paint recently', 'keep'));
      expect(stripped).not.toEqual(asked);
      // cos(x, (a + b) / |a + b|) = (cos(x, a) + cos(x, b)) / |a + b|: one ratio for every chunk.
      const both = await scores(question, 'both');
      const ratios = [...both].map(([text, score]) => ((asked.get(text) as number) + (stripped.get(text) as number)) / score);
      expect(ratios).toHaveLength(4);
      for (const ratio of ratios) expect(ratio).toBeCloseTo(ratios[0] as number, 4);
      expect(ratios[0]).toBeGreaterThan(1);
      expect(ratios[0]).toBeLessThanOrEqual(2 + 1e-6);
      // The lexical side reads the question as asked (its stopwords already drop the scaffolding).
      const lexical = async (questionWords: 'keep' | 'strip'): Promise<string[]> => (await world.search('alice', question, { mode: 'lexical', understand: { questionWords } })).hits.map((hit) => hit.chunkId);
      expect(await lexical('strip')).toEqual(await lexical('keep'));
    } finally {
      await world.close();
    }
  });

  it('bad understand options are MEMEX_INVALID_INPUT', async () => {
    const world = await openWorld(setup);
    try {
      await world.user('alice');
      await expectCode(world.search('alice', 'x', { understand: { dates: 'sometimes' } as never }), 'MEMEX_INVALID_INPUT');
      await expectCode(world.search('alice', 'x', { understand: { now: 'yesterday' } }), 'MEMEX_INVALID_INPUT');
      await expectCode(world.search('alice', 'x', { understand: { feedbackDocs: 0 } }), 'MEMEX_INVALID_INPUT');
      await expectCode(world.search('alice', 'x', { understand: { speakerDepth: 0.5 } }), 'MEMEX_INVALID_INPUT');
      await expectCode(world.search('alice', 'x', { understand: { questionWords: 'drop' } as never }), 'MEMEX_INVALID_INPUT');
    } finally {
      await world.close();
    }
  });
});
