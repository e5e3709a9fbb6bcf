import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFile, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { DEFAULT_HNSW, ExactVectorIndex, HnswVectorIndex, hnswlib } from '../../src/index/index.js';
import { graphKind } from '../../src/index/hnsw.js';
import { tsxEval } from '../helpers/child.js';
import { tempDir } from '../helpers/tmp.js';
import { describeVectorIndexConformance, unitVectors } from './conformance.js';

describeVectorIndexConformance('ExactVectorIndex', (dimension) => new ExactVectorIndex(dimension, 4));
describeVectorIndexConformance('HnswVectorIndex (hnswlib-node)', (dimension) => HnswVectorIndex.create(dimension, DEFAULT_HNSW, 16, 'hnswlib-node'));
const memexGraph = graphKind();
if (memexGraph.kind !== 'memex') console.info(`HnswVectorIndex: Memex's graph addon is not built here (${memexGraph.reason}); hnswlib-node is used and tested`);
else describeVectorIndexConformance("HnswVectorIndex (Memex's graph addon)", (dimension) => HnswVectorIndex.create(dimension, DEFAULT_HNSW, 16, 'memex'));

const kinds = memexGraph.kind === 'memex' ? (['memex', 'hnswlib-node'] as const) : (['hnswlib-node'] as const);

describe('HnswVectorIndex', () => {
  it('grows past its initial capacity', () => {
    const index = HnswVectorIndex.create(8, DEFAULT_HNSW, 16);
    unitVectors(1000, 8).forEach((row, label) => index.add(label, row));
    expect(index.size).toBe(1000);
  });

  it('writes and reads back the same graph, with the removed rows it is told', async () => {
    for (const kind of kinds) {
      const dir = await tempDir();
      const rows = unitVectors(300, 8, 11);
      const index = HnswVectorIndex.create(8, DEFAULT_HNSW, 1024, kind);
      rows.forEach((row, label) => index.add(label, row));
      index.remove(5);
      index.write(join(dir, 'hnsw.bin'));
      const live = rows.map((_, label) => label).filter((label) => label !== 5);
      const again = HnswVectorIndex.read(join(dir, 'hnsw.bin'), 8, DEFAULT_HNSW, live, kind);
      expect(again.size).toBe(299);
      expect(again.search(rows[9] as Float32Array, 5)).toEqual(index.search(rows[9] as Float32Array, 5));
    }
  });

  it('an empty index written and read back grows again (regression: resizeIndex failed, then heap corruption)', async () => {
    for (const kind of kinds) {
      const dir = await tempDir();
      HnswVectorIndex.create(8, DEFAULT_HNSW, 1024, kind).write(join(dir, 'hnsw.bin'));
      const again = HnswVectorIndex.read(join(dir, 'hnsw.bin'), 8, DEFAULT_HNSW, [], kind);
      const rows = unitVectors(200, 8, 3);
      rows.forEach((row, label) => again.add(label, row));
      expect(again.size).toBe(200);
      expect(again.search(rows[7] as Float32Array, 1)[0]?.label).toBe(7);
      // Written and read once more at its new size: still grows.
      again.write(join(dir, 'hnsw.bin'));
      const third = HnswVectorIndex.read(join(dir, 'hnsw.bin'), 8, DEFAULT_HNSW, rows.map((_, label) => label), kind);
      unitVectors(300, 8, 4).forEach((row, label) => third.add(200 + label, row));
      expect(third.size).toBe(500);
    }
  });

  it('turns an unreadable file into MEMEX_INDEX_CORRUPT instead of crashing', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'hnsw.bin'), Buffer.from('not an index at all'));
    for (const kind of kinds) expect(() => HnswVectorIndex.read(join(dir, 'hnsw.bin'), 8, DEFAULT_HNSW, [], kind)).toThrow(expect.objectContaining({ code: 'MEMEX_INDEX_CORRUPT' }) as Error);
    // A real file cut short.
    const rows = unitVectors(100, 8, 2);
    const index = HnswVectorIndex.create(8);
    rows.forEach((row, label) => index.add(label, row));
    index.write(join(dir, 'whole.bin'));
    const whole = await readFile(join(dir, 'whole.bin'));
    await writeFile(join(dir, 'cut.bin'), whole.subarray(0, Math.floor(whole.length / 2)));
    for (const kind of kinds) expect(() => HnswVectorIndex.read(join(dir, 'cut.bin'), 8, DEFAULT_HNSW, [], kind)).toThrow(expect.objectContaining({ code: 'MEMEX_INDEX_CORRUPT' }) as Error);
  });

  it.skipIf(memexGraph.kind !== 'memex')("reads what hnswlib-node writes and the other way round, answering alike (Memex's graph addon)", async () => {
    const dir = await tempDir();
    const rows = unitVectors(400, 16, 21);
    const queries = unitVectors(20, 16, 22);
    for (const [writer, reader] of [['memex', 'hnswlib-node'], ['hnswlib-node', 'memex']] as const) {
      const index = HnswVectorIndex.create(16, DEFAULT_HNSW, 16, writer);
      rows.forEach((row, label) => index.add(label, row));
      index.remove(3);
      index.write(join(dir, `${writer}.bin`));
      const again = HnswVectorIndex.read(join(dir, `${writer}.bin`), 16, DEFAULT_HNSW, rows.map((_, label) => label).filter((label) => label !== 3), reader);
      expect(again.size).toBe(399);
      for (const query of queries) expect(again.search(query, 10)).toEqual(index.search(query, 10));
      expect(again.vector(7)).toEqual(rows[7]);
      const accept = (label: number): boolean => label % 2 === 0;
      for (const query of queries) expect(again.search(query, 5, accept)).toEqual(index.search(query, 5, accept));
    }
  });

  it('passes on an error thrown by a search filter, and searches again after it', () => {
    for (const kind of kinds) {
      const index = HnswVectorIndex.create(8, DEFAULT_HNSW, 16, kind);
      const rows = unitVectors(50, 8, 5);
      rows.forEach((row, label) => index.add(label, row));
      expect(() =>
        index.search(rows[0] as Float32Array, 5, () => {
          throw new Error('the filter broke');
        }),
      ).toThrow('the filter broke');
      expect(index.search(rows[0] as Float32Array, 1)[0]?.label).toBe(0);
    }
  });

  it('falls back to the portable addon when told to, and both builds answer alike', () => {
    const native = fileURLToPath(new URL('../../src/index/native.ts', import.meta.url));
    const code = `import { hnswlib } from ${JSON.stringify(native)};
      const { HierarchicalNSW } = hnswlib().module;
      const index = new HierarchicalNSW('ip', 4); index.initIndex(8);
      [[1,0,0,0],[0,1,0,0],[0,0,1,0]].forEach((v, i) => index.addPoint(v, i));
      console.log(JSON.stringify({ kind: hnswlib().kind, reason: hnswlib().reason, neighbors: index.searchKnn([0, 0.9, 0.1, 0], 2).neighbors }));`;
    const run = (env: Record<string, string>): { kind: string; reason: string | null; neighbors: number[] } =>
      JSON.parse(execFileSync(process.execPath, tsxEval(code), { env: { ...process.env, ...env }, encoding: 'utf8' })) as { kind: string; reason: string | null; neighbors: number[] };
    const portable = run({ MEMEX_HNSW_NATIVE: '0' });
    expect(portable).toEqual({ kind: 'portable', reason: 'MEMEX_HNSW_NATIVE=0', neighbors: [1, 2] });
    expect(run({}).neighbors).toEqual([1, 2]);
  });

  it('says which hnswlib build it loaded', () => {
    const build = hnswlib();
    expect(['native', 'portable']).toContain(build.kind);
    if (build.kind === 'portable') console.info(`hnswlib: portable build (${build.reason})`);
  });
});
