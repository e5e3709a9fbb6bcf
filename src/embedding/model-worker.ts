/**
 * The embedding model's thread (see model-thread.ts): loads a transformers.js feature-extraction
 * pipeline and answers one batch at a time. ONNX Runtime's Node binding runs inference
 * synchronously on the thread that calls it, so here it stalls this thread, never the caller's.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type * as Transformers from '@huggingface/transformers';
import type { FeatureExtractionPipeline } from '@huggingface/transformers';
import { chunkText } from '../chunking/chunk-text.js';
import type { ModelReply, ModelRequest, ModelThreadOptions } from './model-protocol.js';

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
  const spinning = { allow_spinning: '0' };
  return pipeline('feature-extraction', options.id, { dtype: 'fp32', session_options: { extra: { session: { intra_op: spinning, inter_op: spinning } } } });
}

let pipe: FeatureExtractionPipeline;
try {
  pipe = await load();
  // The dimension comes from the model's output, not its config: pooling heads can change it.
  const probe = await pipe(['probe'], { pooling: 'mean', normalize: true });
  const config = pipe.model.config as { max_position_embeddings?: number };
  reply({ type: 'ready', dimension: probe.dims[1] ?? -1, dims: probe.dims, maxPositionEmbeddings: config.max_position_embeddings ?? null });
  probe.dispose();
} catch (cause) {
  reply({ type: 'failed', message: cause instanceof Error ? cause.message : String(cause) });
  process.exit(0);
}

// Requests come one at a time (the caller keeps the queue), so they never interleave here.
port.on('message', (request: ModelRequest) => {
  if (request.kind === 'chunk') {
    // Chunking weighs every paragraph and sentence in the model's tokens: the tokenizer's work,
    // which would otherwise hold the caller's event loop (about 1 us a character here).
    try {
      const countTokens = (text: string): number => pipe.tokenizer.encode(text).length;
      const pieces = request.texts.map((text) => chunkText(text, { ...request.chunking, countTokens }));
      reply({ type: 'pieces', id: request.id, pieces });
    } catch (cause) {
      reply({ type: 'error', id: request.id, message: cause instanceof Error ? cause.message : String(cause) });
    }
    return;
  }
  void (async () => {
    try {
      const output = await pipe([...request.texts], { pooling: 'mean', normalize: true });
      const data = Float32Array.from(output.data as Float32Array);
      output.dispose();
      reply({ type: 'rows', id: request.id, data }, [data.buffer]);
    } catch (cause) {
      reply({ type: 'error', id: request.id, message: cause instanceof Error ? cause.message : String(cause) });
    }
  })();
});
