import { describe, expect, it } from 'vitest';
import { mean_pooling, Tensor } from '@huggingface/transformers';
import { meanPool } from '../../src/embedding/pooling.js';

function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
}

describe("Memex's mean pooling", () => {
  it("gives exactly transformers.js's mean_pooling (the same floats) over padded rows of different lengths", () => {
    const random = seeded(7);
    for (const [batch, length, width] of [
      [1, 1, 4],
      [3, 7, 16],
      [32, 128, 512],
    ] as const) {
      const hidden = Float32Array.from({ length: batch * length * width }, () => random() * 8);
      // Each row keeps a prefix of its positions (padding on the right), one row keeps them all.
      const mask = BigInt64Array.from({ length: batch * length }, (_, i) => (i % length < Math.max(1, length - ((i / length) | 0) * 3) ? 1n : 0n));
      const theirs = mean_pooling(new Tensor('float32', hidden, [batch, length, width]), new Tensor('int64', mask, [batch, length]));
      const pooled = meanPool(hidden, [batch, length, width], mask);
      expect(Array.from(pooled.data)).toEqual(Array.from(theirs.data as Float32Array));
      expect(Array.from(pooled.lengths)).toEqual(Array.from({ length: batch }, (_, i) => Math.max(1, length - i * 3)));
    }
  });

  it('gives NaN for a row with no kept position, as the original does (the embedder turns it into the zero vector)', () => {
    const out = meanPool(new Float32Array([1, 2, 3, 4]), [1, 2, 2], new BigInt64Array([0n, 0n])).data;
    expect(Number.isNaN(out[0])).toBe(true);
  });
});
