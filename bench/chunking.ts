/**
 * Chunking throughput (MB/s of UTF-8 input) on real text: LoCoMo sessions joined into documents,
 * chunked to the model's 128-token input with the model's own tokenizer, and with a plain word
 * counter (the hashed embedder's) to show what the tokenizer costs. Then runs without a space (the
 * text that once froze the server: chunking was quadratic in their length), chunked with
 * `chunkTextAsync` while a timer measures the longest time the event loop waited for a turn.
 *
 *   npx tsx bench/chunking.ts
 */
import { chunkText, chunkTextAsync, chunkingFor } from '../src/chunking/index.js';
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

async function longRun(name: string, counter: { maxTokens: number; countTokens: (t: string) => number }, length: number): Promise<void> {
  const options = chunkingFor({ maxTokens: 128, overlapTokens: null }, counter);
  const text = 'x7Q'.repeat(Math.ceil(length / 3)).slice(0, length);
  let longestWait = 0;
  let last = performance.now();
  let running = true;
  const tick = (): void => {
    const now = performance.now();
    longestWait = Math.max(longestWait, now - last);
    last = now;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  const start = performance.now();
  const pieces = await chunkTextAsync(text, options);
  const seconds = (performance.now() - start) / 1000;
  running = false;
  console.log(`| ${name} | ${length.toLocaleString('en')} | ${seconds.toFixed(2)} | ${pieces.length} | ${longestWait.toFixed(0)} |`);
}

console.log('');
console.log('# one run without a space, chunked with chunkTextAsync (128-token chunks)');
console.log('| token counter | characters | seconds | chunks | longest event-loop wait (ms) |');
console.log('| --- | ---: | ---: | ---: | ---: |');
const embedder = await TransformersEmbedder.load({ model, modelDir });
for (const length of [100_000, 1_000_000]) await longRun(`${model} tokenizer`, embedder, length);
