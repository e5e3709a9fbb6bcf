import { describe, expect, it } from 'vitest';
import { SearchOptionsSchema } from '../../src/core/index.js';
import { CandidateSet, rank } from '../../src/index/fuse.js';
import { contextCosine, contextList, isConversation, messageOfChunk } from '../../src/index/turn-context.js';

const unit = (v: number[]): Float32Array => {
  const norm = Math.hypot(...v);
  return Float32Array.from(v.map((x) => x / norm));
};
const dot = (a: Float32Array, b: Float32Array): number => a.reduce((sum, x, i) => sum + x * (b[i] as number), 0);

describe('context from the turn before', () => {
  it('the contextual cosine is the cosine to the unit-length sum of the row and the row before', () => {
    const query = unit([1, 0.2, 0, 0.1]);
    const row = unit([0, 1, 0.3, 0]);
    const before = unit([0.9, 0.1, 0, 0.4]);
    const sum = unit(Array.from(row, (x, i) => x + (before[i] as number)));
    expect(contextCosine({ own: dot(query, row), previous: dot(query, before), pair: dot(row, before) })).toBeCloseTo(dot(query, sum), 6);
    // A row after an exact match of the query, itself unrelated, scores about 0.71 (cos 45°).
    expect(contextCosine({ own: 0, previous: 1, pair: 0 })).toBeCloseTo(Math.SQRT1_2, 10);
  });

  it('ranks by the contextual cosine, best first, ties in the order given, cut to the depth', () => {
    const rows = [
      { key: 'a', own: 0.1, previous: 0.1, pair: 0.5 },
      { key: 'b', own: 0.1, previous: 0.9, pair: 0.5 },
      { key: 'c', own: 0.1, previous: 0.9, pair: 0.5 },
      { key: 'd', own: 0.5, previous: 0.5, pair: 0.9 },
    ];
    expect(contextList(rows, 3).map((row) => row.key)).toEqual(['b', 'c', 'd']);
    expect(contextList([], 3)).toEqual([]);
  });

  it('a conversation: at least half of the pairs of consecutive messages at the threshold or above; none is no conversation', () => {
    expect(isConversation([0.5, 0.6, 0.1, 0.2], 0.4)).toBe(true);
    expect(isConversation([0.5, 0.1, 0.1], 0.4)).toBe(false);
    expect(isConversation([0.4], 0.4)).toBe(true);
    expect(isConversation([], 0.4)).toBe(false);
    expect(isConversation([-0.9], -1)).toBe(true);
  });

  it("a chunk's message is its id less the trailing index", () => {
    expect(messageOfChunk('msg_01ABC:0')).toBe('msg_01ABC');
    expect(messageOfChunk('msg_01ABC:12')).toBe('msg_01ABC');
    expect(messageOfChunk('plain')).toBe('plain');
  });

  it('fusion adds the contextual rank, and a chunk found only through the turn before is floored by its contextual cosine', () => {
    const settings = { rrfK: 5, vectorWeight: 0.25, lexicalWeight: 1, contextWeight: 0.5, unrelatedCosine: 0.45 };
    const set = new CandidateSet<string, string>((key) => ({ ref: key, order: key.charCodeAt(0), createdAt: Number.NaN }));
    set.addVector([
      { key: 'question', score: 0.8 },
      { key: 'answer', score: 0.2 },
      { key: 'noise', score: 0.2 },
    ]);
    set.addContext([{ key: 'answer', score: 0.6 }]);
    const ranked = rank(set.values(), SearchOptionsSchema.parse({ k: 3, minScore: 0.45 }), settings);
    // The answer stays (its contextual cosine clears the floor); the noise, found by its own low cosine alone, goes.
    expect(ranked.map((c) => c.ref)).toEqual(['answer', 'question']);
    const answer = ranked[0];
    expect(answer?.score).toBeCloseTo(0.25 / (5 + 2) + 0.5 / (5 + 1), 10);
    expect(answer?.relevance).toBeCloseTo((0.6 - 0.45) / 0.55, 10);
    expect(ranked[1]?.score).toBeCloseTo(0.25 / (5 + 1), 10);
  });
});
