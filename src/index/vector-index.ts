import { MemexError } from '../core/index.js';
import { scanAddon } from './native.js';

/** A nearest row: `score` is the inner product, which is the cosine for the unit rows Memex stores. */
export interface Neighbor {
  label: number;
  score: number;
}

/**
 * Nearest-neighbour search over unit-length float32 rows, each under a caller-chosen integer label.
 * Two implementations pass one conformance suite (test/index/conformance.ts): `HnswVectorIndex`,
 * approximate and fast, and `ExactVectorIndex`, brute force, the baseline the benchmark and tests
 * measure recall against. Sync inside: the search itself never waits on anything.
 */
export interface VectorIndex {
  readonly dimension: number;
  /** Live rows (added, not removed). */
  readonly size: number;
  add(label: number, vector: Float32Array): void;
  /** Removes a row from results; a label not in the index is ignored. */
  remove(label: number): void;
  has(label: number): boolean;
  /** Up to `k` rows, best first; with `accept`, only rows it accepts. */
  search(query: Float32Array, k: number, accept?: (label: number) => boolean): Neighbor[];
  /** The stored row of a label, or null. */
  vector(label: number): Float32Array | null;
}

export function checkDimension(index: { dimension: number }, vector: Float32Array): void {
  if (vector.length !== index.dimension) {
    throw new MemexError('MEMEX_MODEL_MISMATCH', `a ${vector.length}-d vector cannot go into a ${index.dimension}-d index`);
  }
}

export function dot(a: Float32Array, b: Float32Array, bOffset = 0): number {
  // Four running sums: independent additions the CPU overlaps (measured 1.3-2x a single sum at 512-d).
  const n = a.length;
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    const j = bOffset + i;
    s0 += (a[i] as number) * (b[j] as number);
    s1 += (a[i + 1] as number) * (b[j + 1] as number);
    s2 += (a[i + 2] as number) * (b[j + 2] as number);
    s3 += (a[i + 3] as number) * (b[j + 3] as number);
  }
  for (; i < n; i++) s0 += (a[i] as number) * (b[bOffset + i] as number);
  return s0 + s1 + (s2 + s3);
}

/**
 * The `k` best of a stream of scores, kept in a min-heap so each push is O(log k): what exact
 * search over n rows needs without sorting all n.
 */
export class TopK {
  private readonly labels: number[] = [];
  private readonly scores: number[] = [];

  constructor(private readonly k: number) {}

  /** The score a new row must beat to get in. */
  get floor(): number {
    return this.labels.length < this.k ? -Infinity : (this.scores[0] as number);
  }

  push(label: number, score: number): void {
    if (this.k <= 0) return;
    const { labels, scores } = this;
    if (labels.length < this.k) {
      labels.push(label);
      scores.push(score);
      let i = labels.length - 1;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if ((scores[parent] as number) <= score) break;
        labels[i] = labels[parent] as number;
        scores[i] = scores[parent] as number;
        i = parent;
      }
      labels[i] = label;
      scores[i] = score;
      return;
    }
    if (score <= (scores[0] as number)) return;
    // Replace the root and sift down.
    let i = 0;
    const n = labels.length;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && (scores[right] as number) < (scores[left] as number) ? right : left;
      if ((scores[child] as number) >= score) break;
      labels[i] = labels[child] as number;
      scores[i] = scores[child] as number;
      i = child;
    }
    labels[i] = label;
    scores[i] = score;
  }

  /** Best first; ties broken by label so results are stable. */
  result(): Neighbor[] {
    return this.labels.map((label, i) => ({ label, score: this.scores[i] as number })).sort((a, b) => b.score - a.score || a.label - b.label);
  }
}

/**
 * Brute force over rows kept in one growing Float32Array: exact, O(rows) per query. The baseline
 * for recall, and fast enough on its own for a few thousand rows.
 */
export class ExactVectorIndex implements VectorIndex {
  private data: Float32Array;
  private labels: number[] = [];
  private readonly slots = new Map<number, number>();

  constructor(
    readonly dimension: number,
    capacity = 1024,
  ) {
    this.data = new Float32Array(Math.max(1, capacity) * dimension);
  }

  get size(): number {
    return this.slots.size;
  }

  add(label: number, vector: Float32Array): void {
    checkDimension(this, vector);
    if (this.slots.has(label)) throw new MemexError('MEMEX_INTERNAL', `label ${label} is already in the index`);
    const slot = this.labels.length;
    if ((slot + 1) * this.dimension > this.data.length) {
      const grown = new Float32Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data.set(vector, slot * this.dimension);
    this.labels.push(label);
    this.slots.set(label, slot);
  }

  remove(label: number): void {
    const slot = this.slots.get(label);
    if (slot === undefined) return;
    this.slots.delete(label);
    this.labels[slot] = -1;
  }

  has(label: number): boolean {
    return this.slots.has(label);
  }

  search(query: Float32Array, k: number, accept?: (label: number) => boolean): Neighbor[] {
    checkDimension(this, query);
    const { labels, data, dimension } = this;
    // Every slot when none was removed or filtered out; else the slots that pass.
    let slots: Uint32Array | null = null;
    if (accept || this.slots.size < labels.length) {
      slots = new Uint32Array(labels.length);
      let count = 0;
      for (let slot = 0; slot < labels.length; slot++) {
        const label = labels[slot] as number;
        if (label >= 0 && (!accept || accept(label))) slots[count++] = slot;
      }
      slots = slots.subarray(0, count);
    }
    return exactScan(data, dimension, query, slots, labels.length, k)
      .map((neighbor) => ({ label: labels[neighbor.label] as number, score: neighbor.score }))
      .sort((a, b) => b.score - a.score || a.label - b.label);
  }

  vector(label: number): Float32Array | null {
    const slot = this.slots.get(label);
    return slot === undefined ? null : this.data.slice(slot * this.dimension, (slot + 1) * this.dimension);
  }
}

/**
 * Exact inner-product search over rows kept in one Float32Array (`dimension` floats a row, row i
 * at i * dimension): the best `k` of the rows `labels` names (all `rows` rows when null), best
 * first, equal scores by label. Runs in native/scan.cc (SIMD, at memory speed) where the CPU-tuned
 * build is loaded, else in JavaScript; both return the same neighbours.
 */
export function exactScan(matrix: Float32Array, dimension: number, query: Float32Array, labels: Uint32Array | null, rows: number, k: number): Neighbor[] {
  const { addon } = scanAddon();
  if (addon) {
    const best = addon.topk(matrix, dimension, query, labels, rows, k);
    const out: Neighbor[] = new Array<Neighbor>(best.labels.length);
    for (let i = 0; i < best.labels.length; i++) out[i] = { label: best.labels[i] as number, score: best.scores[i] as number };
    return out;
  }
  return scanInJs(matrix, dimension, query, labels, rows, k);
}

/** The same scan in JavaScript (and the reference the native one is tested against). */
export function scanInJs(matrix: Float32Array, dimension: number, query: Float32Array, labels: Uint32Array | null, rows: number, k: number): Neighbor[] {
  const top = new TopK(k);
  const count = labels ? labels.length : rows;
  for (let i = 0; i < count; i++) {
    const label = labels ? (labels[i] as number) : i;
    top.push(label, dot(query, matrix, label * dimension));
  }
  return top.result();
}

/** Whether exact scans run natively here, and why not when they do not. */
export function exactScanKind(): { kind: 'native' | 'javascript'; reason: string } {
  const { addon, reason } = scanAddon();
  return addon ? { kind: 'native', reason: '' } : { kind: 'javascript', reason };
}
