/**
 * Embedding throughput through Memex's embedder against a direct call of the transformers.js
 * pipeline on the same texts, in the same run, alternating so neither gets a warmer machine; then
 * Memex at several batch sizes (the `embedding.batchSize` default comes from this sweep).
 *
 *   npx tsx bench/embedding.ts [texts=1024] [rounds=3]
 */
import { cpus } from 'node:os';
import { env, pipeline } from '@huggingface/transformers';
import { TransformersEmbedder } from '../src/embedding/index.js';
import { benchModel, locomoSessions, machine, median } from './locomo.js';

const N = Number(process.argv[2] ?? 1024);
const ROUNDS = Number(process.argv[3] ?? 3);
const BATCH = 32;
const { model, modelDir } = benchModel();
const texts = locomoSessions()
  .flatMap((s) => s.turns.map((t) => `${t.speaker}: ${t.text}`))
  .slice(0, N);

const memex = await TransformersEmbedder.load({ model, modelDir, batchSize: BATCH });
env.allowRemoteModels = false;
env.localModelPath = `${modelDir}/`;
const direct = await pipeline('feature-extraction', model, { dtype: 'fp32' });

// The same texts longest first: what Memex feeds the model. Against this, the difference is Memex's own cost.
const sorted = [...texts].sort((a, b) => b.length - a.length);

async function timeDirect(input: string[] = texts): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < input.length; i += BATCH) {
    const out = await direct(input.slice(i, i + BATCH), { pooling: 'mean', normalize: true });
    out.dispose();
  }
  return performance.now() - start;
}

async function timeMemex(embedder: TransformersEmbedder): Promise<number> {
  const start = performance.now();
  await embedder.embed(texts);
  return performance.now() - start;
}

await timeDirect(); // warm-up: first calls allocate the session's buffers
await timeMemex(memex);
const directMs: number[] = [];
const sortedMs: number[] = [];
const memexMs: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  directMs.push(await timeDirect());
  sortedMs.push(await timeDirect(sorted));
  memexMs.push(await timeMemex(memex));
}
const d = median(directMs);
const ds = median(sortedMs);
const m = median(memexMs);
console.log(`# embedding throughput: ${texts.length} LoCoMo turns, ${model}, batch ${BATCH}, median of ${ROUNDS}`);
console.log(`machine: ${machine()}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}`);
console.log(`| path | texts/s | ms |`);
console.log(`| --- | ---: | ---: |`);
console.log(`| transformers.js pipeline, direct, texts in given order | ${((texts.length / d) * 1000).toFixed(0)} | ${d.toFixed(0)} |`);
console.log(`| transformers.js pipeline, direct, texts longest first | ${((texts.length / ds) * 1000).toFixed(0)} | ${ds.toFixed(0)} |`);
console.log(`| Memex embedder (sorts, checks, copies rows) | ${((texts.length / m) * 1000).toFixed(0)} | ${m.toFixed(0)} |`);
console.log(`Memex overhead against the same batches called directly: ${((m / ds - 1) * 100).toFixed(1)}%; against the given order: ${((m / d - 1) * 100).toFixed(1)}% (negative is faster)`);

console.log(`\n# Memex embedder by batch size`);
console.log(`| batchSize | texts/s |`);
console.log(`| ---: | ---: |`);
for (const batchSize of [8, 16, 32, 64, 128]) {
  const embedder = await TransformersEmbedder.load({ model, modelDir, batchSize });
  await timeMemex(embedder);
  const ms = median([await timeMemex(embedder), await timeMemex(embedder)]);
  console.log(`| ${batchSize} | ${((texts.length / ms) * 1000).toFixed(0)} |`);
}
