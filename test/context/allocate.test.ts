import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allocate, PARTS, type PerPart } from '../../src/context/index.js';

const perPart = (value: fc.Arbitrary<number>): fc.Arbitrary<PerPart> => fc.record({ notes: value, summary: value, memories: value, recent: value });

describe('allocate (shares that flow)', () => {
  it('gives each part its share when all want more', () => {
    expect(allocate(1000, { notes: 0.1, summary: 0.2, memories: 0.3, recent: 0.4 }, { notes: 1e9, summary: 1e9, memories: 1e9, recent: 1e9 })).toEqual({
      notes: 100,
      summary: 200,
      memories: 300,
      recent: 400,
    });
  });

  it('passes what a part leaves unused to the others by weight', () => {
    const given = allocate(1000, { notes: 0.1, summary: 0.2, memories: 0.3, recent: 0.4 }, { notes: 0, summary: 50, memories: 1e9, recent: 1e9 });
    expect(given.notes).toBe(0);
    expect(given.summary).toBe(50);
    expect(given.memories + given.recent).toBe(950);
    expect(given.recent / given.memories).toBeCloseTo(4 / 3, 2);
  });

  it('never exceeds the total or a demand, and leaves nothing a part wants unspent', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100_000 }), perPart(fc.double({ min: 0, max: 1, noNaN: true })), perPart(fc.integer({ min: 0, max: 50_000 })), (total, weights, demands) => {
        const given = allocate(total, weights, demands);
        const sum = PARTS.reduce((s, p) => s + given[p], 0);
        expect(sum).toBeLessThanOrEqual(total);
        for (const part of PARTS) {
          expect(Number.isInteger(given[part])).toBe(true);
          expect(given[part]).toBeGreaterThanOrEqual(0);
          expect(given[part]).toBeLessThanOrEqual(demands[part]);
        }
        // Nothing is left unspent while a part with a share wants more.
        if (PARTS.some((p) => given[p] < demands[p] && weights[p] > 0)) expect(sum).toBe(total);
      }),
    );
  });
});
