import { describe, expect, it } from 'vitest';
import { scanAddon } from '../../src/index/native.js';
import { exactScan, exactScanKind, scanInJs } from '../../src/index/vector-index.js';

/** Seeded unit rows, so a failure reproduces. */
function rows(count: number, dimension: number, seed = 7): Float32Array {
  let state = seed;
  const next = (): number => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31 - 0.5;
  };
  const out = new Float32Array(count * dimension);
  for (let r = 0; r < count; r++) {
    let norm = 0;
    for (let i = 0; i < dimension; i++) {
      const v = next();
      out[r * dimension + i] = v;
      norm += v * v;
    }
    for (let i = 0; i < dimension; i++) out[r * dimension + i] = (out[r * dimension + i] as number) / Math.sqrt(norm);
  }
  return out;
}

const addon = scanAddon().addon;
const native = addon ? describe : describe.skip;
if (!addon) console.info(`exact scan: the native scan is not built here (${scanAddon().reason}); its tests are skipped, the JavaScript scan is tested`);

describe('exact scan', () => {
  const dimension = 384;
  const matrix = rows(2_000, dimension);
  const query = rows(1, dimension, 99);

  it('finds the best rows by inner product, best first, in JavaScript', () => {
    const best = scanInJs(matrix, dimension, query, null, 2_000, 5);
    const all = Array.from({ length: 2_000 }, (_, label) => ({ label, score: dotOf(matrix, dimension, query, label) })).sort((a, b) => b.score - a.score);
    expect(best.map((n) => n.label)).toEqual(all.slice(0, 5).map((n) => n.label));
  });

  it('says which scan it runs', () => {
    const { kind, reason } = exactScanKind();
    expect(kind).toBe(addon ? 'native' : 'javascript');
    if (kind === 'javascript') expect(reason.length).toBeGreaterThan(0);
  });

  native('natively', () => {
    it('returns what the JavaScript scan returns, over every row and over a subset of labels', () => {
      for (const labels of [null, Uint32Array.from({ length: 700 }, (_, i) => i * 2 + 1)]) {
        for (const k of [1, 10, 100]) {
          const js = scanInJs(matrix, dimension, query, labels, 2_000, k);
          const c = exactScan(matrix, dimension, query, labels, 2_000, k);
          expect(c.map((n) => n.label)).toEqual(js.map((n) => n.label));
          c.forEach((n, i) => expect(n.score).toBeCloseTo((js[i] as { score: number }).score, 5));
        }
      }
    });

    it('keeps k to the rows there are, and k 0 or no rows to nothing', () => {
      expect(exactScan(matrix, dimension, query, Uint32Array.of(4, 9), 0, 10).map((n) => n.label).sort()).toEqual([4, 9]);
      expect(exactScan(matrix, dimension, query, null, 2_000, 0)).toEqual([]);
      expect(exactScan(matrix, dimension, query, new Uint32Array(0), 0, 5)).toEqual([]);
    });

    it('refuses a label or row count past the matrix, and arguments of the wrong type, without reading outside it', () => {
      const scan = addon?.topk.bind(addon);
      if (!scan) throw new Error('unreachable');
      expect(() => scan(matrix, dimension, query, Uint32Array.of(2_000), 0, 1)).toThrow(RangeError);
      expect(() => scan(matrix, dimension, query, null, 2_001, 1)).toThrow(RangeError);
      expect(() => scan(matrix, dimension, query.subarray(1), null, 10, 1)).toThrow(TypeError);
      expect(() => scan(matrix, 0, query, null, 10, 1)).toThrow(TypeError);
      expect(() => scan(matrix, dimension, query, [1, 2] as unknown as Uint32Array, 0, 1)).toThrow(TypeError);
      expect(() => scan(matrix, dimension, query, null, -1, 1)).toThrow(TypeError);
      expect(() => scan(matrix, dimension, query, null, 10, 1.5)).toThrow(TypeError);
    });
  });
});

function dotOf(matrix: Float32Array, dimension: number, query: Float32Array, label: number): number {
  let sum = 0;
  for (let i = 0; i < dimension; i++) sum += (query[i] as number) * (matrix[label * dimension + i] as number);
  return sum;
}
