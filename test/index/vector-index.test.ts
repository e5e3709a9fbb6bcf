import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { DEFAULT_HNSW, ExactVectorIndex, HnswVectorIndex, hnswlib } from '../../src/index/index.js';
import { tsxEval } from '../helpers/child.js';
import { tempDir } from '../helpers/tmp.js';
import { describeVectorIndexConformance, unitVectors } from './conformance.js';

describeVectorIndexConformance('ExactVectorIndex', (dimension) => new ExactVectorIndex(dimension, 4));
describeVectorIndexConformance('HnswVectorIndex', (dimension) => HnswVectorIndex.create(dimension, DEFAULT_HNSW, 16));

describe('HnswVectorIndex', () => {
  it('grows past its initial capacity', () => {
    const index = HnswVectorIndex.create(8, DEFAULT_HNSW, 16);
    unitVectors(1000, 8).forEach((row, label) => index.add(label, row));
    expect(index.size).toBe(1000);
  });

  it('writes and reads back the same graph, with the removed rows it is told', async () => {
    const dir = await tempDir();
    const rows = unitVectors(300, 8, 11);
    const index = HnswVectorIndex.create(8);
    rows.forEach((row, label) => index.add(label, row));
    index.remove(5);
    index.write(join(dir, 'hnsw.bin'));
    const live = rows.map((_, label) => label).filter((label) => label !== 5);
    const again = HnswVectorIndex.read(join(dir, 'hnsw.bin'), 8, DEFAULT_HNSW, live);
    expect(again.size).toBe(299);
    expect(again.search(rows[9] as Float32Array, 5)).toEqual(index.search(rows[9] as Float32Array, 5));
  });

  it('an empty index written and read back grows again (regression: resizeIndex failed, then heap corruption)', async () => {
    const dir = await tempDir();
    HnswVectorIndex.create(8).write(join(dir, 'hnsw.bin'));
    const again = HnswVectorIndex.read(join(dir, 'hnsw.bin'), 8, DEFAULT_HNSW, []);
    const rows = unitVectors(200, 8, 3);
    rows.forEach((row, label) => again.add(label, row));
    expect(again.size).toBe(200);
    expect(again.search(rows[7] as Float32Array, 1)[0]?.label).toBe(7);
    // Written and read once more at its new size: still grows.
    again.write(join(dir, 'hnsw.bin'));
    const third = HnswVectorIndex.read(join(dir, 'hnsw.bin'), 8, DEFAULT_HNSW, rows.map((_, label) => label));
    unitVectors(300, 8, 4).forEach((row, label) => third.add(200 + label, row));
    expect(third.size).toBe(500);
  });

  it('turns an unreadable file into MEMEX_INDEX_CORRUPT instead of crashing', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'hnsw.bin'), Buffer.from('not an index at all'));
    expect(() => HnswVectorIndex.read(join(dir, 'hnsw.bin'), 8, DEFAULT_HNSW, [])).toThrow(expect.objectContaining({ code: 'MEMEX_INDEX_CORRUPT' }) as Error);
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
