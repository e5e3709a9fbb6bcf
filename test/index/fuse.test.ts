import { describe, expect, it } from 'vitest';
import { SearchOptionsSchema } from '../../src/core/index.js';
import { CandidateSet, lexicalRelevance, rank, vectorRelevance } from '../../src/index/fuse.js';
import { idealScore } from '../../src/index/lexical.js';

const settings = { rrfK: 5, vectorWeight: 0.25, lexicalWeight: 1, contextWeight: 0.5, unrelatedCosine: 0.45 };

describe('calibrated relevance', () => {
  it('a lexical score reads as the share of the query it matches: 1 at the ideal, a quarter of it is 0.5, none is 0', () => {
    expect(lexicalRelevance(10, 10)).toBe(1);
    expect(lexicalRelevance(25, 10)).toBe(1);
    expect(lexicalRelevance(2.5, 10)).toBeCloseTo(0.5, 10);
    expect(lexicalRelevance(0, 10)).toBe(0);
    expect(lexicalRelevance(3, 0)).toBe(0);
  });

  it('the ideal counts every query term, those no chunk holds with the largest idf', () => {
    const held = idealScore([{ term: 'heron', df: 1 }], 10, { d: 0.5 });
    const withAbsent = idealScore([{ term: 'heron', df: 1 }, { term: 'zermatt', df: 0 }], 10, { d: 0.5 });
    // Two distinct terms: the sum of both idfs, times two.
    expect(withAbsent).toBeCloseTo((Math.log(1 + 9.5 / 1.5) + Math.log(1 + 10.5 / 0.5)) * 1.5 * 2, 10);
    expect(withAbsent).toBeGreaterThan(2 * held);
    expect(idealScore([], 10, { d: 0.5 })).toBe(0);
  });

  it('a cosine counts from what unrelated text scores: 0 at or below it, 1 at 1', () => {
    expect(vectorRelevance(0.3, 0.45)).toBe(0);
    expect(vectorRelevance(0.45, 0.45)).toBe(0);
    expect(vectorRelevance(0.725, 0.45)).toBeCloseTo(0.5, 10);
    expect(vectorRelevance(1, 0.45)).toBe(1);
  });
});

/** Candidates as a backend would hand them over: keys are chunk names. */
function candidates(vector: [string, number][], lexical: [string, number][], ideal: number): CandidateSet<string, string> {
  const names = [...new Set([...vector, ...lexical].map(([name]) => name))].sort();
  const set = new CandidateSet<string, string>((key) => ({ ref: key, order: names.indexOf(key), createdAt: Number.NaN }));
  set.addVector(vector.map(([key, score]) => ({ key, score })));
  set.addLexical(
    lexical.map(([key, score]) => ({ key, score })),
    ideal,
  );
  return set;
}

describe('the relevance floor (minRelevance)', () => {
  it('drops an unrelated chunk and a weak word match, keeps the strong match', () => {
    const set = candidates(
      [['heron', 0.8], ['kettle', 0.2], ['floods', 0.4]],
      [['heron', 9], ['floods', 0.5]],
      10,
    );
    const ranked = rank(set.values(), SearchOptionsSchema.parse({ k: 5, minRelevance: 0.5 }), settings);
    expect(ranked.map((c) => c.ref)).toEqual(['heron']);
  });

  it('never drops the only word match, however weak', () => {
    const set = candidates([['kettle', 0.3], ['taxes', 0.2]], [['kettle', 0.1]], 10);
    const ranked = rank(set.values(), SearchOptionsSchema.parse({ k: 5, minRelevance: 0.9 }), settings);
    expect(ranked.map((c) => c.ref)).toEqual(['kettle']);
    expect(ranked[0]?.relevance).toBeCloseTo(0.1, 10);
  });
});

describe('hybrid fusion', () => {
  it('orders a confident lexical hit first, above what the vector list put first', () => {
    const set = candidates(
      [['near in meaning', 0.62], ['heron nests', 0.55]],
      [['heron nests', 9.5]],
      10,
    );
    const ranked = rank(set.values(), SearchOptionsSchema.parse({ k: 5 }), settings);
    expect(ranked.map((c) => c.ref)).toEqual(['heron nests', 'near in meaning']);
    expect(ranked[0]?.relevance).toBeGreaterThan(0.9);
  });
});
