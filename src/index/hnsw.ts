import type { HierarchicalNSW } from 'hnswlib-node';
import { MemexError } from '../core/index.js';
import { hnswlib } from './native.js';
import { checkDimension, type Neighbor, type VectorIndex } from './vector-index.js';

/**
 * The HNSW knobs. Defaults were chosen with bench/ann.ts (README "Recall"): at 100k rows they give
 * recall@10 >= 0.95 with p50 well under a millisecond here.
 */
export interface HnswParams {
  /**
   * Links per node (default 16). More links raise recall at a given `efSearch` and cost memory
   * (about `m * 8` bytes a row) and build time; 12–48 is the useful range, higher for high recall
   * on hard data.
   */
  m: number;
  /**
   * Candidate list while building (default 200). Higher builds a better graph, slower; it does not
   * change query cost. Below 100 recall drops for the same `efSearch`.
   */
  efConstruction: number;
  /**
   * Candidate list while searching (default 64, raised to k when k is larger). The recall/speed
   * dial: doubling it roughly halves queries/s and closes part of the gap to exact search.
   */
  efSearch: number;
}

export const DEFAULT_HNSW: HnswParams = { m: 16, efConstruction: 200, efSearch: 64 };

/**
 * The smallest capacity Memex lets the graph have. hnswlib reads a saved empty index back with
 * capacity 0, and doubling 0 asks `realloc` for 0 bytes, which frees the graph's memory and
 * returns null: hnswlib throws, then frees it again on destruction (heap corruption). Every size
 * Memex asks for is at least this.
 */
const MIN_CAPACITY = 16;

/**
 * hnswlib-node in inner-product space over unit rows. Memex keeps its own bitmap of live labels
 * (hnswlib only marks deletions, and throws on a second mark), grows capacity by doubling, and
 * hands the addon one reused `number[]` per query: its API takes arrays, and a fresh `Array.from`
 * per call costs more than the copy loop.
 */
export class HnswVectorIndex implements VectorIndex {
  private readonly scratch: number[];
  private live: Uint8Array;
  private liveCount = 0;
  private ef: number;

  private constructor(
    private readonly index: HierarchicalNSW,
    readonly dimension: number,
    readonly params: HnswParams,
  ) {
    this.scratch = new Array<number>(dimension).fill(0);
    this.live = new Uint8Array(Math.max(64, index.getMaxElements()));
    this.ef = params.efSearch;
    index.setEf(params.efSearch);
  }

  static create(dimension: number, params: HnswParams = DEFAULT_HNSW, capacity = 1024): HnswVectorIndex {
    const { HierarchicalNSW } = hnswlib().module;
    const index = new HierarchicalNSW('ip', dimension);
    index.initIndex({ maxElements: Math.max(MIN_CAPACITY, capacity), m: params.m, efConstruction: params.efConstruction, randomSeed: 100 });
    return new HnswVectorIndex(index, dimension, params);
  }

  /** Reads a file `write` made; `live` names the labels not removed since (hnswlib keeps no such list). */
  static read(path: string, dimension: number, params: HnswParams, live: Iterable<number>): HnswVectorIndex {
    const { HierarchicalNSW } = hnswlib().module;
    const index = new HierarchicalNSW('ip', dimension);
    try {
      index.readIndexSync(path);
    } catch (cause) {
      throw new MemexError('MEMEX_INDEX_CORRUPT', `cannot read the HNSW file ${path}: ${(cause as Error).message}`, { cause });
    }
    if (index.getNumDimensions() !== dimension) {
      throw new MemexError('MEMEX_INDEX_CORRUPT', `${path} holds ${index.getNumDimensions()}-d rows, expected ${dimension}`);
    }
    try {
      if (index.getMaxElements() < MIN_CAPACITY) index.resizeIndex(MIN_CAPACITY);
    } catch (cause) {
      throw new MemexError('MEMEX_INDEX_CORRUPT', `cannot grow the HNSW graph read from ${path}: ${(cause as Error).message}`, { cause });
    }
    const result = new HnswVectorIndex(index, dimension, params);
    for (const label of live) result.markLive(label);
    if (result.liveCount > index.getCurrentCount()) throw new MemexError('MEMEX_INDEX_CORRUPT', `${path} has fewer rows than its label map`);
    return result;
  }

  write(path: string): void {
    this.index.writeIndexSync(path);
  }

  get size(): number {
    return this.liveCount;
  }

  /** Rows in the graph, removed ones included: what a compaction would reclaim is `stored - size`. */
  get stored(): number {
    return this.index.getCurrentCount();
  }

  setEf(ef: number): void {
    if (ef !== this.ef) {
      this.index.setEf(ef);
      this.ef = ef;
    }
  }

  add(label: number, vector: Float32Array): void {
    checkDimension(this, vector);
    if (this.has(label)) throw new MemexError('MEMEX_INTERNAL', `label ${label} is already in the index`);
    const capacity = this.index.getMaxElements();
    if (this.index.getCurrentCount() >= capacity) this.index.resizeIndex(Math.max(MIN_CAPACITY, capacity * 2));
    this.index.addPoint(this.copy(vector), label);
    this.markLive(label);
  }

  remove(label: number): void {
    if (!this.has(label)) return;
    this.index.markDelete(label);
    this.live[label] = 0;
    this.liveCount--;
  }

  has(label: number): boolean {
    return this.live[label] === 1;
  }

  search(query: Float32Array, k: number, accept?: (label: number) => boolean): Neighbor[] {
    checkDimension(this, query);
    const n = Math.min(k, this.index.getCurrentCount());
    if (n <= 0 || this.liveCount === 0) return [];
    const { distances, neighbors } = accept ? this.index.searchKnn(this.copy(query), n, accept) : this.index.searchKnn(this.copy(query), n);
    const result: Neighbor[] = new Array<Neighbor>(neighbors.length);
    for (let i = 0; i < neighbors.length; i++) result[i] = { label: neighbors[i] as number, score: 1 - (distances[i] as number) };
    return result;
  }

  vector(label: number): Float32Array | null {
    return this.has(label) ? Float32Array.from(this.index.getPoint(label)) : null;
  }

  private copy(vector: Float32Array): number[] {
    const scratch = this.scratch;
    for (let i = 0; i < vector.length; i++) scratch[i] = vector[i] as number;
    return scratch;
  }

  private markLive(label: number): void {
    if (!Number.isSafeInteger(label) || label < 0) throw new MemexError('MEMEX_INTERNAL', `bad label ${label}`);
    if (label >= this.live.length) {
      const grown = new Uint8Array(Math.max(label + 1, this.live.length * 2));
      grown.set(this.live);
      this.live = grown;
    }
    if (this.live[label] === 0) this.liveCount++;
    this.live[label] = 1;
  }
}
