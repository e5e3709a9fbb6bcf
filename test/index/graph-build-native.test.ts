import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_HNSW, HnswVectorIndex } from '../../src/index/hnsw.js';
import { HnswBuilder } from '../../src/index/hnsw-builder.js';
import { graphAddon } from '../../src/index/native.js';
import { exactScan } from '../../src/index/vector-index.js';
import { tempDir } from '../helpers/tmp.js';

const { addon, reason } = graphAddon();
if (!addon) console.info(`threaded graph build: Memex's graph addon is not built here (${reason}); graphs are built one row at a time through hnswlib-node, and these tests are skipped`);

/** Seeded unit rows of few intrinsic dimensions (16, projected), as sentence embeddings are more than uniform noise is. */
function rows(count: number, dimension: number, seed: number): Float32Array {
  let state = 12345;
  const random = (): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
  const latent = 16;
  const projection = Float32Array.from({ length: latent * dimension }, random);
  state = seed;
  const out = new Float32Array(count * dimension);
  const point = new Float32Array(latent);
  for (let r = 0; r < count; r++) {
    for (let l = 0; l < latent; l++) point[l] = random();
    let norm = 0;
    for (let d = 0; d < dimension; d++) {
      let value = 0;
      for (let l = 0; l < latent; l++) value += point[l]! * projection[l * dimension + d]!;
      out[r * dimension + d] = value;
      norm += value * value;
    }
    for (let d = 0; d < dimension; d++) out[r * dimension + d]! /= Math.sqrt(norm);
  }
  return out;
}

async function built(matrix: Float32Array, dimension: number, threads: number): Promise<HnswVectorIndex> {
  const count = matrix.length / dimension;
  const builder = new HnswBuilder({ dimension, params: DEFAULT_HNSW, capacity: count, threads });
  for (let label = 0; label < count; label++) {
    builder.add(label, matrix.subarray(label * dimension, (label + 1) * dimension));
    await builder.room();
  }
  return builder.finish(join(await tempDir(), 'graph.hnsw'));
}

function recall(index: HnswVectorIndex, matrix: Float32Array, queries: Float32Array, dimension: number): number {
  let found = 0;
  let asked = 0;
  for (let q = 0; q < queries.length / dimension; q++) {
    const query = queries.subarray(q * dimension, (q + 1) * dimension);
    const truth = new Set(exactScan(matrix, dimension, query, null, matrix.length / dimension, 10).map((hit) => hit.label));
    for (const hit of index.search(query, 10)) if (truth.has(hit.label)) found++;
    asked += truth.size;
  }
  return found / asked;
}

describe.skipIf(!addon)('the threaded HNSW build (native/hnsw.cc)', () => {
  it('builds a graph on two threads that hnswlib-node reads back, with the recall of a one-thread build', async () => {
    const dimension = 48;
    const matrix = rows(6000, dimension, 7);
    const queries = rows(200, dimension, 99);
    const threaded = await built(matrix, dimension, 2);
    const single = await built(matrix, dimension, 1);
    expect(threaded.size).toBe(6000);
    expect(threaded.stored).toBe(6000);
    const threadedRecall = recall(threaded, matrix, queries, dimension);
    const singleRecall = recall(single, matrix, queries, dimension);
    expect(threadedRecall).toBeGreaterThanOrEqual(0.95);
    expect(threadedRecall).toBeGreaterThanOrEqual(singleRecall - 0.02);
    // Every row is in it, and finds itself.
    for (const label of [0, 1, 2999, 5999]) expect(threaded.search(matrix.subarray(label * dimension, (label + 1) * dimension), 1)[0]?.label).toBe(label);
    // It grows as any index does after the build.
    threaded.add(6000, queries.subarray(0, dimension));
    expect(threaded.search(queries.subarray(0, dimension), 1)[0]?.label).toBe(6000);
  });

  it('gives on one thread the graph hnswlib-node builds from the same rows: the same neighbours', async () => {
    const dimension = 32;
    const matrix = rows(1500, dimension, 3);
    const native = await built(matrix, dimension, 1);
    const hnswlib = HnswVectorIndex.create(dimension, DEFAULT_HNSW, 1500, 'hnswlib-node');
    for (let label = 0; label < 1500; label++) hnswlib.add(label, matrix.subarray(label * dimension, (label + 1) * dimension));
    const queries = rows(50, dimension, 11);
    for (let q = 0; q < 50; q++) {
      const query = queries.subarray(q * dimension, (q + 1) * dimension);
      expect(native.search(query, 10)).toEqual(hnswlib.search(query, 10));
    }
  });

  it('reads a graph large enough for 2 MB pages and answers, grows, writes and is dropped while its memory is moved into them', async () => {
    // 6,000 x 384 is 9.7 MB: the bottom layer is put into huge pages by a thread of its own after the
    // read, and growing the graph waits for that thread before its memory moves.
    const dimension = 384;
    const matrix = rows(6000, dimension, 21);
    const dir = await tempDir();
    const graph = addon!.create(dimension, 6000, 16, 100, 100);
    addon!.add(graph, Uint32Array.from({ length: 6000 }, (_, i) => i), matrix, 2);
    addon!.write(graph, join(dir, 'graph.hnsw'));
    const query = matrix.subarray(123 * dimension, 124 * dimension);
    const expected = addon!.search(graph, query, 10, null);
    for (let round = 0; round < 3; round++) {
      const read = addon!.read(join(dir, 'graph.hnsw'), dimension);
      expect(addon!.search(read, query, 10, null)).toEqual(expected);
      if (round === 0) continue;
      const extra = rows(3000, dimension, 22 + round);
      addon!.add(read, Uint32Array.from({ length: 3000 }, (_, i) => 6000 + i), extra, 2);
      expect(addon!.capacity(read)).toBeGreaterThanOrEqual(9000);
      expect(addon!.search(read, extra.subarray(0, dimension), 1, null).labels[0]).toBe(6000);
      if (round === 2) addon!.resize(read, 20_000);
      addon!.write(read, join(dir, `grown-${round}.hnsw`));
      expect(addon!.count(addon!.read(join(dir, `grown-${round}.hnsw`), dimension))).toBe(9000);
    }
  });

  it('refuses a label given twice and bad arguments with thrown errors, never a crash', async () => {
    const builder = new HnswBuilder({ dimension: 4, params: DEFAULT_HNSW, capacity: 16, threads: 2 });
    builder.add(1, new Float32Array([1, 0, 0, 0]));
    builder.add(1, new Float32Array([0, 1, 0, 0]));
    await expect(builder.finish(join(await tempDir(), 'graph.hnsw'))).rejects.toThrow(/label 1 is already in the graph/);

    const graph = addon!.create(4, 16, 16, 200, 100);
    expect(() => addon!.add(graph, new Uint32Array([0, 1]), new Float32Array(4), 2)).toThrow(RangeError);
    expect(() => addon!.add(graph, new Uint32Array([0]), new Float64Array(4) as unknown as Float32Array, 2)).toThrow(TypeError);
    expect(() => addon!.add({} as never, new Uint32Array([0]), new Float32Array(4), 2)).toThrow(TypeError);
    expect(() => addon!.create(0, 16, 16, 200, 100)).toThrow(TypeError);
    expect(() => addon!.create(4, 16, 1, 200, 100)).toThrow(RangeError);
    // It grows past the capacity it was made with.
    addon!.add(graph, Uint32Array.from({ length: 100 }, (_, i) => i), rows(100, 4, 5), 2);
    expect(addon!.count(graph)).toBe(100);
  });
});

describe.skipIf(!addon)('the walk on 8-bit codes (native/codes.h)', () => {
  const dot = (a: Float32Array, b: Float32Array): number => a.reduce((sum, value, i) => sum + value * b[i]!, 0);

  it('answers the float rows\' distances, nearest first, and the recall hnswlib-node gets searching the same graph', async () => {
    const dimension = 384;
    const matrix = rows(6000, dimension, 31);
    const queries = rows(100, dimension, 32);
    const file = join(await tempDir(), 'graph.hnsw');
    const graph = addon!.create(dimension, 6000, 16, 100, 100);
    addon!.add(graph, Uint32Array.from({ length: 6000 }, (_, i) => i), matrix, 2);
    addon!.write(graph, file);
    const raw = HnswVectorIndex.read(file, dimension, DEFAULT_HNSW, Array.from({ length: 6000 }, (_, i) => i), 'hnswlib-node');
    let memexFound = 0;
    let rawFound = 0;
    for (const efSearch of [10, 64]) {
      addon!.setEf(graph, efSearch);
      raw.setEf(efSearch);
      for (let q = 0; q < 100; q++) {
        const query = queries.subarray(q * dimension, (q + 1) * dimension);
        const { labels, distances } = addon!.search(graph, query, 10, null);
        expect(labels).toHaveLength(10);
        for (let i = 0; i < 10; i++) {
          // Scored again on the float row: 1 - dot, not the 8-bit estimate.
          expect(distances[i]).toBeCloseTo(1 - dot(query, matrix.subarray(labels[i]! * dimension, (labels[i]! + 1) * dimension)), 5);
          if (i > 0) expect(distances[i]).toBeGreaterThanOrEqual(distances[i - 1]!);
        }
        const truth = new Set(exactScan(matrix, dimension, query, null, 6000, 10).map((hit) => hit.label));
        memexFound += [...labels].filter((label) => truth.has(label)).length;
        rawFound += raw.search(query, 10).filter((hit) => truth.has(hit.label)).length;
      }
    }
    expect(memexFound / 2000).toBeGreaterThanOrEqual(rawFound / 2000 - 0.005);
  });

  it('walks rows of any width, rows of zeros, deleted rows and filters', () => {
    const dimension = 20; // codes are padded to 32 values
    const matrix = rows(500, dimension, 41);
    matrix.fill(0, 7 * dimension, 8 * dimension);
    const graph = addon!.create(dimension, 500, 16, 100, 100);
    addon!.add(graph, Uint32Array.from({ length: 500 }, (_, i) => i), matrix, 1);
    const query = matrix.subarray(99 * dimension, 100 * dimension);
    expect(addon!.search(graph, query, 1, null).labels[0]).toBe(99);
    expect(addon!.search(graph, query, 1, (label: number) => label !== 99).labels[0]).not.toBe(99);
    addon!.markDelete(graph, 99);
    const after = addon!.search(graph, query, 500, null);
    expect([...after.labels]).not.toContain(99);
    expect(after.distances[[...after.labels].indexOf(7)]).toBeCloseTo(1, 6);
    expect(addon!.search(graph, new Float32Array(dimension), 3, null).labels).toHaveLength(3);
  });
});
