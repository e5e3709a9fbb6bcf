import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ExactVectorIndex, type VectorIndex } from '../../src/index/index.js';
import { expectCode } from '../helpers/errors.js';

/** Deterministic unit vectors: a seeded PRNG, so a failure replays. */
export function unitVectors(count: number, dimension: number, seed = 1): Float32Array[] {
  let state = seed;
  const next = (): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
  return Array.from({ length: count }, () => {
    const v = Float32Array.from({ length: dimension }, next);
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  });
}

/** What every VectorIndex promises; each implementation runs this suite (exact search is the oracle). */
export function describeVectorIndexConformance(name: string, make: (dimension: number) => VectorIndex): void {
  describe(`VectorIndex conformance: ${name}`, () => {
    it('finds a stored row first when queried with it, with its cosine as the score', () => {
      const index = make(16);
      const rows = unitVectors(200, 16);
      rows.forEach((row, label) => index.add(label, row));
      expect(index.size).toBe(200);
      for (const label of [0, 57, 199]) {
        const [best] = index.search(rows[label] as Float32Array, 3);
        expect(best?.label).toBe(label);
        expect(best?.score).toBeCloseTo(1, 5);
      }
    });

    it('returns best first, at most k, and k when k rows exist', () => {
      const index = make(8);
      unitVectors(50, 8, 2).forEach((row, label) => index.add(label, row));
      const hits = index.search(unitVectors(1, 8, 99)[0] as Float32Array, 10);
      expect(hits).toHaveLength(10);
      for (let i = 1; i < hits.length; i++) expect((hits[i - 1] as { score: number }).score).toBeGreaterThanOrEqual((hits[i] as { score: number }).score);
      expect(index.search(unitVectors(1, 8, 98)[0] as Float32Array, 500)).toHaveLength(50);
    });

    it('never returns a removed row, and removing twice or an unknown label is harmless', () => {
      const index = make(8);
      const rows = unitVectors(100, 8, 3);
      rows.forEach((row, label) => index.add(label, row));
      for (let label = 0; label < 100; label += 2) index.remove(label);
      index.remove(0);
      index.remove(12345);
      expect(index.size).toBe(50);
      expect(index.has(2)).toBe(false);
      expect(index.vector(2)).toBeNull();
      const hits = index.search(rows[4] as Float32Array, 50);
      expect(hits).toHaveLength(50);
      expect(hits.every((hit) => hit.label % 2 === 1)).toBe(true);
    });

    it('applies a filter and still returns k when k rows pass it', () => {
      const index = make(8);
      unitVectors(300, 8, 4).forEach((row, label) => index.add(label, row));
      const hits = index.search(unitVectors(1, 8, 5)[0] as Float32Array, 10, (label) => label % 3 === 0);
      expect(hits).toHaveLength(10);
      expect(hits.every((hit) => hit.label % 3 === 0)).toBe(true);
    });

    it('keeps the rows it is given, and refuses another dimension with a coded error', () => {
      const index = make(4);
      const row = unitVectors(1, 4, 6)[0] as Float32Array;
      index.add(7, row);
      const stored = index.vector(7) as Float32Array;
      stored.forEach((x, i) => expect(x).toBeCloseTo(row[i] as number, 6));
      expect(() => index.add(8, new Float32Array(5))).toThrow(expect.objectContaining({ code: 'MEMEX_MODEL_MISMATCH' }) as Error);
      expect(() => index.search(new Float32Array(3), 1)).toThrow(expect.objectContaining({ code: 'MEMEX_MODEL_MISMATCH' }) as Error);
    });

    it('agrees with exact search on small random sets (property)', () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 120 }), fc.integer({ min: 1, max: 1000 }), (count, seed) => {
          const index = make(6);
          const exact = new ExactVectorIndex(6);
          unitVectors(count, 6, seed).forEach((row, label) => {
            index.add(label, row);
            exact.add(label, row);
          });
          const query = unitVectors(1, 6, seed + 7)[0] as Float32Array;
          const k = Math.min(5, count);
          // On sets this small HNSW with ef >= 16 is exact; the labels must match as sets.
          expect(new Set(index.search(query, k).map((hit) => hit.label))).toEqual(new Set(exact.search(query, k).map((hit) => hit.label)));
        }),
        { numRuns: 40 },
      );
    });
  });
}

export { expectCode };
