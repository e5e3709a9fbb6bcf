/**
 * Approximate nearest-neighbour search at the sizes the README reports, through the same harness as
 * `memex bench` (src/bench): Memex's HnswVectorIndex against raw hnswlib-node (and, with --peers,
 * usearch and LanceDB), recall@10 against exact search, efSearch swept, one query at a time.
 *
 * Sizes: `10k` is real embeddings (LoCoMo turns + MS MARCO passages through the shared model, real
 * LoCoMo questions and MS MARCO queries); any other size (`100k`, `1m`, ...) is clustered synthetic
 * 384-d unit vectors (`memex bench --dataset synthetic:N`).
 *
 *   npx tsx bench/ann.ts [--sizes 10k,100k] [--queries 1000] [--peers hnswlib,usearch,lancedb]
 *                        [--rounds 3] [--html dir] [--json file]
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadDataset, PEERS, renderHtml, runBench, type BenchDataset, type BenchReport, type PeerName } from '../src/bench/index.js';
import { TransformersEmbedder } from '../src/embedding/index.js';
import { hnswlib } from '../src/index/native.js';
import { benchModel } from './locomo.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10k,100k' },
    queries: { type: 'string', default: '1000' },
    peers: { type: 'string', default: 'hnswlib' },
    rounds: { type: 'string', default: '3' },
    html: { type: 'string' },
    json: { type: 'string' },
  },
});
const queries = Number(values.queries);
const rounds = Number(values.rounds);
const peers = values.peers.split(',').filter((p) => p !== '') as PeerName[];
for (const peer of peers) if (!(PEERS as readonly string[]).includes(peer)) throw new Error(`--peers takes ${PEERS.join(', ')}, not ${peer}`);

/** LoCoMo's turns and MS MARCO's passages as one 10k corpus; both sets' questions as its queries. */
function realTenThousand(): BenchDataset {
  const options = { queries, maxMessages: 0 };
  const locomo = loadDataset('locomo', { ...options, queries: Math.ceil(queries / 2) });
  const marco = loadDataset('msmarco', { ...options, queries: Math.floor(queries / 2) });
  const rows = [...(locomo.texts?.rows ?? []), ...(marco.texts?.rows ?? [])];
  return {
    name: '10k real',
    description: `${rows.length.toLocaleString('en-US')} real texts: ${locomo.description}; ${marco.description}`,
    vectorSource: `every text and ${queries} real queries (half LoCoMo questions, half MS MARCO queries), embedded with the shared model`,
    texts: { rows, queries: [...(locomo.texts?.queries ?? []), ...(marco.texts?.queries ?? [])] },
    sessions: [],
    questions: [],
  };
}

const fixed = (n: number, digits: number): string => n.toFixed(digits);
const rate = (n: number): string => (n < 100 ? n.toFixed(1) : Math.round(n).toLocaleString('en-US'));

function print(size: string, report: BenchReport): void {
  const { ann } = report;
  console.log(`\n## ${size}: ${report.dataset.description}\n`);
  console.log(`- ${ann.rows.toLocaleString('en-US')} rows x ${ann.dimension}-d, ${ann.queries} queries (${report.dataset.vectorSource}); recall@${ann.k} against exact search; ${report.options.rounds} timed rounds per efSearch, systems taking turns every 50 queries`);
  for (const s of ann.skipped) console.log(`- **${s.name} skipped**: ${s.reason}`);
  console.log('\n| build & file | build s | rows/s | RSS growth MB | write s | load s | file MB | reloaded = built |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | :---: |');
  for (const s of ann.systems) {
    const b = s.build;
    console.log(`| ${s.name} ${s.version} | ${fixed(b.seconds, 1)} | ${rate(b.rowsPerSecond)} | ${fixed(b.memoryBytes / 2 ** 20, 0)} | ${fixed(b.writeSeconds, 2)} | ${fixed(b.loadSeconds, 2)} | ${fixed(b.fileBytes / 2 ** 20, 1)} | ${b.reloadMatches ? 'yes' : '**no**'} |`);
  }
  const names = ann.systems.map((s) => s.name);
  const memex = ann.systems.find((s) => s.name === 'memex');
  const raw = ann.systems.find((s) => s.name === 'hnswlib');
  console.log(`\n| efSearch | recall@10 ${names.join(' / ')} | qps ${names.join(' / ')} | ${raw ? '**memex/hnswlib qps** | ' : ''}p50 ms ${names.join(' / ')} | p99 ms ${names.join(' / ')} |`);
  console.log(`| ---: | :---: | :---: | ${raw ? '---: | ' : ''}:---: | :---: |`);
  report.options.efSearch.forEach((ef, i) => {
    const at = ann.systems.map((s) => s.curve[i]);
    const join3 = (f: (p: NonNullable<(typeof at)[number]>) => string): string => at.map((p) => (p ? f(p) : '—')).join(' / ');
    const ratio = memex && raw ? `**${fixed((memex.curve[i]?.qps ?? 0) / (raw.curve[i]?.qps ?? 1), 2)}x** | ` : '';
    console.log(`| ${ef} | ${join3((p) => fixed(p.recall, 4))} | ${join3((p) => rate(p.qps))} | ${ratio}${join3((p) => fixed(p.p50Ms, 3))} | ${join3((p) => fixed(p.p99Ms, 3))} |`);
  });
  console.log(`| exact (${ann.exact.kind}) | 1 | ${rate(ann.exact.qps)} | ${raw ? '| ' : ''}${fixed(ann.exact.p50Ms, 3)} | ${fixed(ann.exact.p99Ms, 3)} |`);
  const good = memex?.curve.find((p) => p.recall >= 0.95 && p.p50Ms < 1);
  console.log(`\nSmallest efSearch where Memex has recall@10 >= 0.95 and p50 < 1 ms: ${good ? `${good.efSearch} (recall ${fixed(good.recall, 4)}, p50 ${fixed(good.p50Ms, 3)} ms)` : 'none in the sweep'}. Took ${fixed(report.seconds, 0)} s; load average ${fixed(report.machine.loadAverage[0], 2)} → ${fixed(report.machine.loadAverage[1], 2)}.`);
}

const build = hnswlib();
const { model, modelDir } = benchModel();
console.log('# ANN search: Memex HnswVectorIndex against raw hnswlib-node (and peers) and exact search\n');
const reports: BenchReport[] = [];
for (const size of values.sizes.split(',').map((s) => s.trim().toLowerCase())) {
  const dataset = size === '10k' ? realTenThousand() : loadDataset(`synthetic:${size}`, { queries, maxMessages: 0 });
  const report = await runBench({
    dataset,
    embedder: () => TransformersEmbedder.load({ model, modelDir, batchSize: 32 }),
    peers,
    rounds,
    onProgress: (step, done, total) => process.stderr.write(`\r${size}: ${step} ${done}/${total}          `),
  });
  process.stderr.write('\n');
  if (reports.length === 0) console.log(`- machine: ${report.machine.cpu}, ${report.machine.cores} cores, ${report.machine.platform} ${report.machine.arch}, Node ${report.machine.node}; Memex's hnswlib build: **${build.kind}**${build.reason ? ` (${build.reason})` : ''}`);
  print(size, report);
  reports.push(report);
  if (values.html) {
    if (!existsSync(values.html)) mkdirSync(values.html, { recursive: true });
    writeFileSync(join(values.html, `ann-${size}.html`), renderHtml(report));
  }
}
if (values.json) writeFileSync(values.json, `${JSON.stringify(reports, null, 2)}\n`);
