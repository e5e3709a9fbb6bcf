import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_BM25, LexicalIndex } from '../../src/index/lexical.js';

const LOCOMO = fileURLToPath(new URL('../../../shared/eval/locomo/locomo10.json', import.meta.url));

/** LoCoMo's turns and questions when they are beside the clone, else a small corpus of our own. */
function corpus(): { texts: string[]; queries: string[] } {
  if (existsSync(LOCOMO)) {
    const samples = JSON.parse(readFileSync(LOCOMO, 'utf8')) as { conversation: Record<string, unknown>; qa: { question: string }[] }[];
    const texts: string[] = [];
    for (const sample of samples.slice(0, 3)) {
      for (const [key, value] of Object.entries(sample.conversation)) {
        if (!key.startsWith('session_') || !Array.isArray(value)) continue;
        for (const turn of value as { speaker: string; text: string }[]) texts.push(`${turn.speaker}: ${turn.text}`);
      }
    }
    return { texts, queries: samples.slice(0, 3).flatMap((s) => s.qa.map((q) => q.question)).slice(0, 300) };
  }
  console.info('lexical test: LoCoMo is not beside the clone (../shared/eval/locomo); using a small corpus of its own');
  const words = ['garden', 'painting', 'paint', 'race', 'charity', 'dog', 'dogs', 'Melanie', 'Caroline', 'camping', 'beach', 'book', 'books', 'the', 'a', 'went'];
  const texts = Array.from({ length: 400 }, (_, i) => Array.from({ length: 4 + (i % 9) }, (_, j) => words[(i * 7 + j * 3) % words.length]).join(' '));
  const queries = Array.from({ length: 100 }, (_, i) => `${words[i % words.length]} ${words[(i * 5) % words.length]} ${words[(i * 11) % words.length]}`);
  return { texts, queries };
}

describe('lexical search', () => {
  const { texts, queries } = corpus();

  it('ranks exactly as MiniSearch does: the same chunks, order and scores, with and without a filter', () => {
    const index = LexicalIndex.create(DEFAULT_BM25);
    texts.forEach((text, label) => index.add(label, text));
    const even = (label: number): boolean => label % 2 === 0;
    for (const query of [...queries, 'Melanie Melanie painted', '', 'the of and']) {
      for (const accept of [undefined, even]) {
        for (const limit of [10, 100]) expect(index.search(query, limit, accept)).toEqual(index.searchWithMiniSearch(query, limit, accept));
      }
    }
  });

  it('leaves out removed chunks and ranks the rest as an index of only the live chunks does', () => {
    // MiniSearch itself counts a removed chunk in a term's document frequency until a vacuum (its
    // first searches after a removal drop it from postings a count at a time): the scorer counts
    // live chunks only, as the Postgres side and a rebuilt index do.
    const index = LexicalIndex.create(DEFAULT_BM25);
    const live = LexicalIndex.create(DEFAULT_BM25);
    texts.forEach((text, label) => {
      index.add(label, text);
      if (label % 3 !== 0) live.add(label, text);
    });
    for (let label = 0; label < texts.length; label += 3) index.remove(label);
    for (const query of queries.slice(0, 100)) {
      const hits = index.search(query, 1_000);
      const expected = live.searchWithMiniSearch(query, 1_000);
      expect(hits.every((hit) => hit.label % 3 !== 0)).toBe(true);
      expect(hits.map((hit) => hit.label)).toEqual(expected.map((hit) => hit.label));
      hits.forEach((hit, i) => expect(hit.score).toBeCloseTo((expected[i] as { score: number }).score, 9));
    }
  });
});
