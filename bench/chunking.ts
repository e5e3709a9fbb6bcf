/**
 * Chunking throughput (MB/s of UTF-8 input) on real text: LoCoMo sessions joined into documents,
 * chunked to the model's 128-token input with the model's own tokenizer, and with a plain word
 * counter (the hashed embedder's) to show what the tokenizer costs.
 *
 *   npx tsx bench/chunking.ts
 */
import { chunkText, chunkingFor } from '../src/chunking/index.js';
import { HashedEmbedder, TransformersEmbedder } from '../src/embedding/index.js';
import { benchModel, locomoSessions, machine } from './locomo.js';

const { model, modelDir } = benchModel();
// Each session as one long document: turns as paragraphs, so every level of splitting is exercised.
const documents = locomoSessions().map((s) => s.turns.map((t) => `${t.speaker}: ${t.text}`).join('\n\n'));
const bytes = documents.reduce((sum, d) => sum + Buffer.byteLength(d), 0);

async function run(name: string, counter: { maxTokens: number; countTokens: (t: string) => number }): Promise<void> {
  const options = chunkingFor({ maxTokens: 128, overlapTokens: null }, counter);
  let chunks = 0;
  for (const d of documents.slice(0, 20)) chunkText(d, options); // warm-up
  const start = performance.now();
  for (const d of documents) chunks += chunkText(d, options).length;
  const seconds = (performance.now() - start) / 1000;
  console.log(`| ${name} | ${(bytes / 1e6 / seconds).toFixed(2)} | ${chunks} |`);
}

console.log(`# chunking: ${documents.length} LoCoMo sessions as documents, ${(bytes / 1e6).toFixed(2)} MB, 128-token chunks, 16-token overlap`);
console.log(`machine: ${machine()}`);
console.log('| token counter | MB/s | chunks |');
console.log('| --- | ---: | ---: |');
await run(`${model} tokenizer`, await TransformersEmbedder.load({ model, modelDir }));
await run('word count (hashed embedder)', new HashedEmbedder());
