/**
 * The embedding model's thread (see model-thread.ts): loads a transformers.js feature-extraction
 * pipeline and answers one request at a time (queries first). ONNX Runtime's Node binding runs inference
 * synchronously on the thread that calls it, so here it stalls this thread, never the caller's.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type * as Transformers from '@huggingface/transformers';
import type { FeatureExtractionPipeline } from '@huggingface/transformers';
import { chunkText } from '../chunking/chunk-text.js';
import { SESSION_OPTIONS, type ModelReply, type ModelRequest, type ModelThreadOptions } from './model-protocol.js';
import { normalizeInPlace } from './embedder.js';
import { meanPool } from './pooling.js';

const port = parentPort;
if (!port) throw new Error('model-worker.ts runs as a worker thread');
const options = workerData as ModelThreadOptions;

function reply(message: ModelReply, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(message, transfer);
}

async function load(): Promise<FeatureExtractionPipeline> {
  const { env, pipeline } = (await import(options.transformersUrl)) as typeof Transformers;
  env.allowLocalModels = options.root !== null;
  env.allowRemoteModels = options.root === null && options.allowRemote;
  if (options.root !== null) env.localModelPath = `${options.root}/`;
  env.cacheDir = options.cacheDir;
  // ONNX Runtime's thread pool spins between runs by default, holding a core busy: on a small machine
  // the event loop (and the rest of a chat turn) then waits for the CPU. Without spinning, measured
  // here on 2 cores: a chat turn's own cost 18 -> 14 ms p50, and bulk embedding 327 -> 404 texts/s.
  return pipeline('feature-extraction', options.id, { dtype: 'fp32', session_options: SESSION_OPTIONS });
}

let pipe: FeatureExtractionPipeline;
/**
 * The most tokens the model reads (TransformersEmbedder.maxTokens, sent with 'ready'): longer input
 * is cut there, so a text taken whole on trust can never overrun the model's positions, and a count
 * below it is the text's whole length.
 */
let maxTokens = 8192;

/**
 * What the pipeline does for `{ pooling: 'mean', normalize: true }` (transformers.js's
 * FeatureExtractionPipeline), step by step: so the attention mask it tokenizes anyway also gives
 * each text's length in tokens (the count chunking would otherwise spend a tokenizer call on), and
 * the pooling and scaling to unit length are Memex's: the same result without transformers.js's
 * per-element overheads, which took 15% of a bulk embedding's time (pooling.ts).
 */
async function embed(texts: readonly string[]): Promise<{ data: Float32Array<ArrayBuffer>; tokens: Int32Array<ArrayBuffer> }> {
  const inputs = pipe.tokenizer([...texts], { padding: true, truncation: true, max_length: maxTokens }) as { attention_mask: Transformers.Tensor };
  const outputs = (await pipe.model(inputs)) as Record<string, Transformers.Tensor | undefined>;
  const hidden = outputs.last_hidden_state ?? outputs.logits ?? outputs.token_embeddings;
  if (!hidden || hidden.dims.length !== 3) throw new Error(`the model gave no [batch, tokens, width] output (last_hidden_state, logits or token_embeddings) to pool: it gave ${Object.keys(outputs).join(', ')}`);
  const width = hidden.dims[2] as number;
  const { data, lengths } = meanPool(hidden.data as Float32Array, hidden.dims, inputs.attention_mask.data as BigInt64Array);
  for (let at = 0; at < data.length; at += width) normalizeInPlace(data.subarray(at, at + width));
  for (const tensor of Object.values(outputs)) tensor?.dispose();
  return { data, tokens: lengths };
}

try {
  pipe = await load();
  const positions = (pipe.model.config as { max_position_embeddings?: number }).max_position_embeddings;
  maxTokens = Math.min(...[pipe.tokenizer.model_max_length, positions].filter((n): n is number => typeof n === 'number' && Number.isFinite(n) && n > 0), 8192);
  // The dimension comes from the model's output, not its config: pooling heads can change it.
  const probe = await embed(['probe']);
  reply({ type: 'ready', dimension: probe.data.length, dims: [1, probe.data.length], maxTokens });
} catch (cause) {
  reply({ type: 'failed', message: cause instanceof Error ? cause.message : String(cause) });
  process.exit(0);
}

/** Queries run together, at most this many texts. */
const URGENT_BATCH = 32;

/**
 * Requests the caller sent that have not run. The caller sends a bulk request before the one under
 * way is answered, so the model never waits for the caller's thread between batches; a query sent
 * meanwhile still goes first, with every query waiting beside it, as one run.
 */
const waiting: ModelRequest[] = [];
let busy = false;
let runs = 0;

port.on('message', (request: ModelRequest) => {
  waiting.push(request);
  // After the messages that arrived together are all in `waiting`: then a query among them goes first.
  if (!busy) {
    busy = true;
    setImmediate(next);
  }
});

function next(): void {
  const first = waiting.findIndex((request) => request.kind === 'embed' && request.urgent);
  const taken = first === -1 ? waiting.splice(0, 1) : takeQueries(first);
  void answer(taken).finally(() => {
    if (waiting.length > 0) setImmediate(next);
    else busy = false;
  });
}

/** The queries waiting from `first` on, up to URGENT_BATCH texts (at least one). */
function takeQueries(first: number): ModelRequest[] {
  const taken: ModelRequest[] = [];
  let texts = 0;
  for (let at = first; at < waiting.length; ) {
    const request = waiting[at] as ModelRequest;
    if (request.kind !== 'embed' || !request.urgent) {
      at++;
      continue;
    }
    if (taken.length > 0 && texts + request.texts.length > URGENT_BATCH) break;
    texts += request.texts.length;
    taken.push(...waiting.splice(at, 1));
  }
  return taken;
}

async function answer(requests: ModelRequest[]): Promise<void> {
  const only = requests[0] as ModelRequest;
  try {
    if (only.kind === 'chunk') {
      // Chunking weighs every paragraph and sentence in the model's tokens: the tokenizer's work,
      // which would otherwise hold the caller's event loop (about 1 us a character here).
      const countTokens = (text: string): number => pipe.tokenizer.encode(text).length;
      const pieces = only.texts.map((text) => chunkText(text, { ...only.chunking, countTokens }));
      reply({ type: 'pieces', id: only.id, pieces });
      return;
    }
    const { data, tokens } = await embed(requests.flatMap((request) => request.texts));
    const run = ++runs;
    if (requests.length === 1) {
      reply({ type: 'rows', id: only.id, data, tokens, run }, [data.buffer, tokens.buffer]);
      return;
    }
    const width = tokens.length === 0 ? 0 : data.length / tokens.length;
    let at = 0;
    for (const request of requests) {
      const end = at + request.texts.length;
      const rows = data.slice(at * width, end * width);
      const counts = tokens.slice(at, end);
      reply({ type: 'rows', id: request.id, data: rows, tokens: counts, run }, [rows.buffer, counts.buffer]);
      at = end;
    }
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    for (const request of requests) reply({ type: 'error', id: request.id, message });
  }
}
