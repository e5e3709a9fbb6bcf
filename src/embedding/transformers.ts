import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { FeatureExtractionPipeline } from '@huggingface/transformers';
import { MemexError } from '../core/index.js';
import { allocateRows, assertTexts, isBlank, normalizeInPlace, throwIfAborted, type EmbedOptions, type Embedder } from './embedder.js';

export interface TransformersEmbedderOptions {
  /** A model id on the hub (`Xenova/all-MiniLM-L6-v2`) or under `modelDir`. */
  model: string;
  /** A local folder in transformers.js layout; when set nothing is fetched. See config `embedding.modelDir`. */
  modelDir?: string | null;
  cacheDir?: string | null;
  allowRemote?: boolean;
  batchSize?: number;
}

/** Where a model is read from, resolved once: transformers.js looks for `<root>/<id>/config.json`. */
interface ModelLocation {
  root: string | null;
  id: string;
}

function locate(options: TransformersEmbedderOptions): ModelLocation {
  const { modelDir, model } = options;
  if (!modelDir) return { root: null, id: model };
  if (existsSync(join(modelDir, model, 'config.json'))) return { root: modelDir, id: model };
  // MEMEX_MODEL_DIR may name the model folder itself.
  if (existsSync(join(modelDir, 'config.json'))) return { root: dirname(modelDir), id: basename(modelDir) };
  throw new MemexError('MEMEX_MODEL_UNAVAILABLE', `no model "${model}" in ${modelDir}: neither ${join(modelDir, model, 'config.json')} nor ${join(modelDir, 'config.json')} exists`, {
    details: { model, modelDir },
  });
}

/**
 * transformers.js keeps its settings in one global `env`, so loads run one at a time, each setting
 * what it needs; a loaded pipeline keeps its files and no longer reads `env`.
 */
let loadQueue: Promise<unknown> = Promise.resolve();
const loaded = new Map<string, Promise<TransformersEmbedder>>();

/**
 * Sentence embeddings from a transformers.js feature-extraction pipeline (ONNX Runtime on the CPU),
 * mean-pooled and L2-normalised. One instance per model per process: `load` shares it.
 */
export class TransformersEmbedder implements Embedder {
  readonly maxTokens: number;
  private readonly specialTokens: number;

  private constructor(
    readonly modelId: string,
    readonly dimension: number,
    private readonly pipe: FeatureExtractionPipeline,
    private readonly batchSize: number,
  ) {
    const config = pipe.model.config as { max_position_embeddings?: number };
    const limits = [pipe.tokenizer.model_max_length, config.max_position_embeddings].filter(
      (n): n is number => typeof n === 'number' && Number.isFinite(n) && n > 0,
    );
    this.maxTokens = Math.min(...limits, 8192);
    this.specialTokens = pipe.tokenizer.encode('').length;
  }

  /** Loads the model once per process; later calls with the same options share it. */
  static load(options: TransformersEmbedderOptions): Promise<TransformersEmbedder> {
    const key = JSON.stringify([options.model, options.modelDir ?? null, options.cacheDir ?? null, options.batchSize ?? 32]);
    let loading = loaded.get(key);
    if (!loading) {
      loading = loadQueue.then(() => TransformersEmbedder.create(options));
      loadQueue = loading.catch(() => undefined);
      loaded.set(key, loading);
      // A failed load is not cached: the next call tries again (say, once the network is back).
      loading.catch(() => loaded.delete(key));
    }
    return loading;
  }

  private static async create(options: TransformersEmbedderOptions): Promise<TransformersEmbedder> {
    const location = locate(options);
    const { env, pipeline } = await import('@huggingface/transformers');
    env.allowLocalModels = location.root !== null;
    env.allowRemoteModels = location.root === null && options.allowRemote !== false;
    if (location.root !== null) env.localModelPath = `${location.root}/`;
    env.cacheDir = options.cacheDir ?? join(homedir(), '.cache', 'memex', 'models');
    let pipe: FeatureExtractionPipeline;
    try {
      pipe = await pipeline('feature-extraction', location.id, { dtype: 'fp32' });
    } catch (cause) {
      const where = location.root ? `from ${location.root}` : env.allowRemoteModels ? 'from the cache or the hub' : 'from the cache (downloads are off)';
      const reason = cause instanceof Error ? cause.message : String(cause);
      throw new MemexError('MEMEX_MODEL_UNAVAILABLE', `cannot load embedding model ${options.model} ${where}: ${reason}`, {
        cause,
        details: { model: options.model, modelDir: options.modelDir ?? null },
      });
    }
    // The dimension comes from the model's output, not its config: pooling heads can change it.
    const probe = await pipe(['probe'], { pooling: 'mean', normalize: true });
    const dimension = probe.dims[1];
    if (typeof dimension !== 'number') throw new MemexError('MEMEX_MODEL_UNAVAILABLE', `model ${options.model} gave output of shape [${probe.dims.join(', ')}]`);
    return new TransformersEmbedder(options.model, dimension, pipe, options.batchSize ?? 32);
  }

  countTokens(text: string): number {
    return text === '' ? this.specialTokens : this.pipe.tokenizer.encode(text).length;
  }

  async embed(texts: readonly string[], options: EmbedOptions = {}): Promise<Float32Array[]> {
    assertTexts(texts);
    throwIfAborted(options.signal);
    const rows = allocateRows(texts.length, this.dimension);
    // Longest first, so each batch pads its texts to a similar length instead of to one outlier.
    const order = texts
      .map((text, index) => ({ text, index }))
      .filter(({ text }) => !isBlank(text))
      .sort((a, b) => b.text.length - a.text.length);
    for (let begin = 0; begin < order.length; begin += this.batchSize) {
      throwIfAborted(options.signal);
      const batch = order.slice(begin, begin + this.batchSize);
      const output = await this.pipe(
        batch.map((item) => item.text),
        { pooling: 'mean', normalize: true },
      );
      const data = output.data as Float32Array;
      for (const [j, item] of batch.entries()) {
        const row = rows[item.index] as Float32Array;
        row.set(data.subarray(j * this.dimension, (j + 1) * this.dimension));
        normalizeInPlace(row);
      }
      output.dispose();
    }
    return rows;
  }
}
