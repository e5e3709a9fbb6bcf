import type { HierarchicalNSW } from 'hnswlib-node';
import { MemexError } from '../core/index.js';
import { graphAddon, hnswlib, type GraphAddon, type GraphHandle } from './native.js';
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

/** The seed of a graph's levels: the same rows in the same order give the same graph. */
const SEED = 100;

/**
 * The graph calls HnswVectorIndex makes: Memex's addon (native/hnsw.cc) where it is built for this
 * machine, else hnswlib-node. Both are the same hnswlib and read each other's files.
 */
interface Graph {
  readonly kind: GraphKind;
  capacity(): number;
  count(): number;
  dim(): number;
  resize(capacity: number): void;
  setEf(ef: number): void;
  /** Rows `labels`, `vectors` from i·dim for the i-th; on `threads` threads where the graph can. */
  add(labels: Uint32Array, vectors: Float32Array, threads: number): void;
  markDelete(label: number): void;
  search(query: Float32Array, k: number, accept?: (label: number) => boolean): { labels: ArrayLike<number>; distances: ArrayLike<number> };
  point(label: number): Float32Array;
  write(path: string): void;
}

function memexGraph(addon: GraphAddon, graph: GraphHandle): Graph {
  return {
    kind: 'memex',
    capacity: () => addon.capacity(graph),
    count: () => addon.count(graph),
    dim: () => addon.dim(graph),
    resize: (capacity) => addon.resize(graph, capacity),
    setEf: (ef) => addon.setEf(graph, ef),
    add: (labels, vectors, threads) => addon.add(graph, labels, vectors, threads),
    markDelete: (label) => addon.markDelete(graph, label),
    search: (query, k, accept) => addon.search(graph, query, k, accept ?? null),
    point: (label) => addon.point(graph, label),
    write: (path) => addon.write(graph, path),
  };
}

/**
 * hnswlib-node's graph. Its API takes arrays of numbers: one reused `number[]` per call, since a
 * fresh `Array.from` per call costs more than the copy loop.
 */
function hnswlibNodeGraph(index: HierarchicalNSW): Graph {
  const scratch = new Array<number>(index.getNumDimensions()).fill(0);
  const copy = (vector: Float32Array): number[] => {
    for (let i = 0; i < vector.length; i++) scratch[i] = vector[i] as number;
    return scratch;
  };
  return {
    kind: 'hnswlib-node',
    capacity: () => index.getMaxElements(),
    count: () => index.getCurrentCount(),
    dim: () => index.getNumDimensions(),
    resize: (capacity) => index.resizeIndex(capacity),
    setEf: (ef) => index.setEf(ef),
    add(labels, vectors) {
      const dim = index.getNumDimensions();
      for (let i = 0; i < labels.length; i++) index.addPoint(copy(vectors.subarray(i * dim, (i + 1) * dim)), labels[i] as number);
    },
    markDelete: (label) => index.markDelete(label),
    search(query, k, accept) {
      if (!accept) {
        const { distances, neighbors } = index.searchKnn(copy(query), k);
        return { labels: neighbors, distances };
      }
      // hnswlib-node ends the process when the filter throws: the error is kept and thrown here.
      let failure: { error: unknown } | null = null;
      const guarded = (label: number): boolean => {
        if (failure) return false;
        try {
          return accept(label);
        } catch (error) {
          failure = { error };
          return false;
        }
      };
      const { distances, neighbors } = index.searchKnn(copy(query), k, guarded);
      if (failure) throw (failure as { error: unknown }).error;
      return { labels: neighbors, distances };
    },
    point: (label) => Float32Array.from(index.getPoint(label)),
    write: (path) => index.writeIndexSync(path),
  };
}

export type GraphKind = 'memex' | 'hnswlib-node';

function alreadyIn(label: number): MemexError {
  return new MemexError('MEMEX_INTERNAL', `label ${label} is already in the graph`);
}

/** Which graph HnswVectorIndex uses here, and why not Memex's own when it is not. */
export function graphKind(): { kind: GraphKind; reason: string } {
  const { addon, reason } = graphAddon();
  return addon ? { kind: 'memex', reason: '' } : { kind: 'hnswlib-node', reason };
}

function requireGraphAddon(): GraphAddon {
  const { addon, reason } = graphAddon();
  if (!addon) throw new MemexError('MEMEX_INDEX_UNAVAILABLE', `Memex's graph addon is not loaded here: ${reason}`);
  return addon;
}

/**
 * An HNSW graph in inner-product space over unit rows. Memex keeps its own bitmap of live labels
 * (hnswlib only marks deletions, and throws on a second mark) and grows capacity by doubling.
 */
export class HnswVectorIndex implements VectorIndex {
  private live: Uint8Array;
  private liveCount = 0;
  private readonly one = new Uint32Array(1);
  private ef: number;

  private constructor(
    private readonly graph: Graph,
    readonly dimension: number,
    readonly params: HnswParams,
  ) {
    this.live = new Uint8Array(Math.max(64, graph.capacity()));
    this.ef = params.efSearch;
    graph.setEf(params.efSearch);
  }

  /** `graph` picks the implementation (tests compare them); by default Memex's addon where it is built. */
  static create(dimension: number, params: HnswParams = DEFAULT_HNSW, capacity = 1024, graph: GraphKind = graphKind().kind): HnswVectorIndex {
    const size = Math.max(MIN_CAPACITY, capacity);
    if (graph === 'memex') {
      const addon = requireGraphAddon();
      return new HnswVectorIndex(memexGraph(addon, addon.create(dimension, size, params.m, params.efConstruction, SEED)), dimension, params);
    }
    const { HierarchicalNSW } = hnswlib().module;
    const index = new HierarchicalNSW('ip', dimension);
    index.initIndex({ maxElements: size, m: params.m, efConstruction: params.efConstruction, randomSeed: SEED });
    return new HnswVectorIndex(hnswlibNodeGraph(index), dimension, params);
  }

  /** Reads a file `write` made; `live` names the labels not removed since (hnswlib keeps no such list). */
  static read(path: string, dimension: number, params: HnswParams, live: Iterable<number>, kind: GraphKind = graphKind().kind): HnswVectorIndex {
    let graph: Graph;
    try {
      if (kind === 'memex') {
        const addon = requireGraphAddon();
        graph = memexGraph(addon, addon.read(path, dimension));
      } else {
        const { HierarchicalNSW } = hnswlib().module;
        const index = new HierarchicalNSW('ip', dimension);
        index.readIndexSync(path);
        graph = hnswlibNodeGraph(index);
      }
    } catch (cause) {
      throw new MemexError('MEMEX_INDEX_CORRUPT', `cannot read the HNSW file ${path}: ${(cause as Error).message}`, { cause });
    }
    if (graph.dim() !== dimension) {
      throw new MemexError('MEMEX_INDEX_CORRUPT', `${path} holds ${graph.dim()}-d rows, expected ${dimension}`);
    }
    try {
      if (graph.capacity() < MIN_CAPACITY) graph.resize(MIN_CAPACITY);
    } catch (cause) {
      throw new MemexError('MEMEX_INDEX_CORRUPT', `cannot grow the HNSW graph read from ${path}: ${(cause as Error).message}`, { cause });
    }
    const result = new HnswVectorIndex(graph, dimension, params);
    for (const label of live) result.markLive(label);
    if (result.liveCount > graph.count()) throw new MemexError('MEMEX_INDEX_CORRUPT', `${path} has fewer rows than its label map`);
    return result;
  }

  write(path: string): void {
    this.graph.write(path);
  }

  get size(): number {
    return this.liveCount;
  }

  /** Rows in the graph, removed ones included: what a compaction would reclaim is `stored - size`. */
  get stored(): number {
    return this.graph.count();
  }

  setEf(ef: number): void {
    if (ef !== this.ef) {
      this.graph.setEf(ef);
      this.ef = ef;
    }
  }

  add(label: number, vector: Float32Array): void {
    checkDimension(this, vector);
    if (this.has(label)) throw alreadyIn(label);
    this.one[0] = label;
    this.reserve(1);
    this.graph.add(this.one, vector, 1);
    this.markLive(label);
  }

  /**
   * Adds rows in one call: the i-th label's vector is `vectors` from i·dimension. With Memex's addon
   * `threads` threads add them at once (the graph then depends on how they interleave); hnswlib-node
   * adds them one at a time.
   */
  addMany(labels: Uint32Array, vectors: Float32Array, threads = 1): void {
    if (vectors.length !== labels.length * this.dimension) {
      throw new MemexError('MEMEX_INTERNAL', `${labels.length} labels need ${labels.length * this.dimension} values, got ${vectors.length}`);
    }
    const fresh = new Set<number>();
    for (const label of labels) {
      if (this.has(label) || fresh.has(label)) throw alreadyIn(label);
      fresh.add(label);
    }
    this.reserve(labels.length);
    this.graph.add(labels, vectors, threads);
    for (const label of labels) this.markLive(label);
  }

  /** Grows the graph, by doubling, to hold `rows` more. */
  private reserve(rows: number): void {
    const capacity = this.graph.capacity();
    const needed = this.graph.count() + rows;
    if (needed > capacity) this.graph.resize(Math.max(MIN_CAPACITY, capacity * 2, needed));
  }

  remove(label: number): void {
    if (!this.has(label)) return;
    this.graph.markDelete(label);
    this.live[label] = 0;
    this.liveCount--;
  }

  has(label: number): boolean {
    return this.live[label] === 1;
  }

  search(query: Float32Array, k: number, accept?: (label: number) => boolean): Neighbor[] {
    checkDimension(this, query);
    const n = Math.min(k, this.graph.count());
    if (n <= 0 || this.liveCount === 0) return [];
    const { distances, labels } = this.graph.search(query, n, accept);
    const result: Neighbor[] = new Array<Neighbor>(labels.length);
    for (let i = 0; i < labels.length; i++) result[i] = { label: labels[i] as number, score: 1 - (distances[i] as number) };
    return result;
  }

  vector(label: number): Float32Array | null {
    return this.has(label) ? this.graph.point(label) : null;
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
