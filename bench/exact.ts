/**
 * Exact search: the scan behind every selective filter and every short graph walk (src/index/vector-index.ts exactScan),
 * against a plain C scan of the same rows in the same run (bench/native/scan-baseline.c, compiled
 * here with -O3 -march=native), and against the JavaScript scan Memex used before (and still uses
 * where the native build is missing). Issue 21's target: Memex within 1.5x of the C scan.
 *
 *   npx tsx bench/exact.ts [--sizes 100k:384,10k:512] [--queries 50] [--k 100] [--json]
 *
 * Rows are seeded random unit vectors: a scan's cost does not depend on what the rows hold. k is the
 * candidate depth a search asks the scan for (search.candidates, 100). "Memex" is `exactScan`, the
 * call `UserIndex.exact` makes, over a Uint32Array of every label (a filtered search passes the
 * labels that match); the 10% rows are every tenth label, as a selective filter leaves them.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { exactScan, exactScanKind, scanInJs } from '../src/index/vector-index.js';
import { machine, median } from './locomo.js';
import { fakeVectors } from './lib/fixtures.js';

const { values } = parseArgs({
  options: { sizes: { type: 'string', default: '100k:384,10k:512' }, queries: { type: 'string', default: '50' }, k: { type: 'string', default: '100' }, json: { type: 'boolean', default: false } },
});
const QUERIES = Number(values.queries);
const K = Number(values.k);
const progress = (line: string): void => void process.stderr.write(`${line}\n`);

interface Row {
  size: string;
  rows: number;
  dimension: number;
  /** p50 ms per query. */
  c: number | null;
  memex: number;
  memexSubset: number;
  javascript: number;
  javascriptSubset: number;
}

const dir = mkdtempSync(join(tmpdir(), 'memex-bench-exact-'));
const binary = join(dir, 'scan-baseline');
const source = fileURLToPath(new URL('native/scan-baseline.c', import.meta.url));
const compiled = spawnSync('cc', ['-O3', '-march=native', '-o', binary, source], { encoding: 'utf8' });
if (compiled.status !== 0) progress(`the C baseline did not compile (${compiled.stderr || compiled.error?.message}); its column is empty`);

function parseSize(spec: string): { size: string; rows: number; dimension: number } {
  const [count = '', dimension = '384'] = spec.split(':');
  const rows = Number(count.replace(/k$/i, '000').replace(/m$/i, '000000'));
  return { size: count, rows, dimension: Number(dimension) };
}

function flat(vectors: readonly Float32Array[], dimension: number): Float32Array {
  const out = new Float32Array(vectors.length * dimension);
  vectors.forEach((v, i) => out.set(v, i * dimension));
  return out;
}

function timeEach(queries: readonly Float32Array[], rounds: number, run: (query: Float32Array) => unknown): number {
  for (const query of queries.slice(0, 3)) run(query);
  const ms: number[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const query of queries) {
      const start = performance.now();
      run(query);
      ms.push(performance.now() - start);
    }
  }
  return median(ms);
}

const results: Row[] = [];
for (const spec of values.sizes.split(',')) {
  const { size, rows, dimension } = parseSize(spec.trim());
  progress(`${size} x ${dimension}: generating rows ...`);
  const matrix = flat(fakeVectors(rows, 1, dimension), dimension);
  const queries = fakeVectors(QUERIES, 2, dimension);
  const all = Uint32Array.from({ length: rows }, (_, i) => i);
  const subset = Uint32Array.from({ length: Math.ceil(rows / 10) }, (_, i) => i * 10);

  // The same answers from every scan, or the timings mean nothing.
  for (const query of queries.slice(0, 5)) {
    const a = exactScan(matrix, dimension, query, all, 0, K).map((n) => n.label);
    const b = scanInJs(matrix, dimension, query, all, 0, K).map((n) => n.label);
    if (a.join() !== b.join()) progress(`warning: the native and JavaScript scans differ on a query (float32 against float64 sums: ties at the edge of the top ${K})`);
  }

  let c: number | null = null;
  if (compiled.status === 0) {
    writeFileSync(join(dir, 'rows.f32'), matrix);
    writeFileSync(join(dir, 'queries.f32'), flat(queries, dimension));
    progress(`${size} x ${dimension}: C baseline ...`);
    const out = execFileSync(binary, [join(dir, 'rows.f32'), join(dir, 'queries.f32'), String(rows), String(QUERIES), String(dimension), String(K), '3'], { encoding: 'utf8', maxBuffer: 1 << 24 });
    c = median(out.trim().split('\n').map(Number));
  }
  progress(`${size} x ${dimension}: Memex (${exactScanKind().kind}) ...`);
  const memex = timeEach(queries, 3, (q) => exactScan(matrix, dimension, q, all, 0, K));
  const memexSubset = timeEach(queries, 3, (q) => exactScan(matrix, dimension, q, subset, 0, K));
  progress(`${size} x ${dimension}: JavaScript scan ...`);
  const javascript = timeEach(queries.slice(0, Math.min(QUERIES, 20)), 1, (q) => scanInJs(matrix, dimension, q, all, 0, K));
  const javascriptSubset = timeEach(queries.slice(0, Math.min(QUERIES, 20)), 1, (q) => scanInJs(matrix, dimension, q, subset, 0, K));
  results.push({ size, rows, dimension, c, memex, memexSubset, javascript, javascriptSubset });
}
rmSync(dir, { recursive: true, force: true });

const cpu = `${cpus().length} x ${cpus()[0]?.model.trim() ?? 'cpu'}`;
if (values.json) {
  console.log(JSON.stringify({ machine: machine(), cpu, scan: exactScanKind(), k: K, queries: QUERIES, results }, null, 2));
} else {
  const scan = exactScanKind();
  console.log(`${machine()}, ${cpu}; Memex's scan: ${scan.kind}${scan.reason ? ` (${scan.reason})` : ''}; k ${K}, ${QUERIES} queries, p50 ms a query`);
  console.log();
  console.log('| rows | C scan (baseline) | Memex | Memex / C | GB/s (C / Memex) | Memex, 10% of rows | JavaScript scan | JavaScript, 10% of rows | JavaScript / C |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const gb = (ms: number | null): string => (ms ? ((r.rows * r.dimension * 4) / (ms / 1000) / 1e9).toFixed(1) : '-');
    const ratio = (ms: number): string => (r.c ? `${(ms / r.c).toFixed(2)}x` : '-');
    console.log(
      `| ${r.size} x ${r.dimension} | ${r.c?.toFixed(2) ?? '-'} | ${r.memex.toFixed(2)} | ${ratio(r.memex)} | ${gb(r.c)} / ${gb(r.memex)} | ${r.memexSubset.toFixed(2)} | ${r.javascript.toFixed(1)} | ${r.javascriptSubset.toFixed(1)} | ${ratio(r.javascript)} |`,
    );
  }
}
