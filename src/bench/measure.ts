/** Latency figures shared by every part of `memex bench`. */

export interface Latency {
  qps: number;
  p50Ms: number;
  p99Ms: number;
}

/** Log-spaced buckets: `counts[i]` latencies fell in [edgesMs[i], edgesMs[i + 1]). */
export interface Histogram {
  edgesMs: number[];
  counts: number[];
}

export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

/** Calls per second over the time they took in all, and the median and 99th percentile of one call. */
export function latency(latencies: Float64Array, totalMs: number): Latency {
  const sorted = Float64Array.from(latencies).sort();
  return { qps: totalMs > 0 ? (latencies.length / totalMs) * 1000 : 0, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99) };
}

export function histogram(latencies: Float64Array, buckets = 24): Histogram {
  if (latencies.length === 0) return { edgesMs: [], counts: [] };
  const sorted = Float64Array.from(latencies).sort();
  const low = Math.max(1e-4, sorted[0] as number);
  const high = Math.max(low * 1.01, sorted[sorted.length - 1] as number);
  const ratio = (high / low) ** (1 / buckets);
  const edgesMs = Array.from({ length: buckets + 1 }, (_, i) => low * ratio ** i);
  edgesMs[buckets] = high;
  const counts: number[] = new Array<number>(buckets).fill(0);
  for (const value of sorted) {
    const at = Math.min(buckets - 1, Math.max(0, Math.floor(Math.log(Math.max(value, low) / low) / Math.log(ratio))));
    counts[at] = (counts[at] as number) + 1;
  }
  return { edgesMs, counts };
}

/** Runs `call` over `items` one at a time, timing each. */
export async function timeEach<T>(items: readonly T[], call: (item: T) => Promise<unknown>, onProgress?: (done: number) => void): Promise<{ latencies: Float64Array; totalMs: number }> {
  const latencies = new Float64Array(items.length);
  const start = performance.now();
  for (const [i, item] of items.entries()) {
    const t = performance.now();
    await call(item);
    latencies[i] = performance.now() - t;
    if (i % 10 === 0) onProgress?.(i);
  }
  return { latencies, totalMs: performance.now() - start };
}

/** Runs `call` over `items` with `concurrency` callers at once; calls per second. */
export async function concurrentRate<T>(items: readonly T[], concurrency: number, call: (item: T) => Promise<unknown>): Promise<number> {
  let next = 0;
  const start = performance.now();
  const worker = async (): Promise<void> => {
    while (next < items.length) await call(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  const ms = performance.now() - start;
  return ms > 0 ? (items.length / ms) * 1000 : 0;
}
