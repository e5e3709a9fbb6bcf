import { HASHED_MODEL, MemexError, type Config, type EmbeddingModel } from '../core/index.js';
import type { Embedder } from './embedder.js';
import { HashedEmbedder } from './hashed.js';
import { TransformersEmbedder } from './transformers.js';

export type EmbeddingWarning = { kind: 'embedding-fallback'; model: string; reason: string };

export interface LoadEmbedderOptions {
  /** The model the data dir's vectors were made with (memex.json), if any. */
  recorded?: EmbeddingModel | null;
  onWarning?: (warning: EmbeddingWarning) => void;
}

/**
 * The embedder the configuration asks for. When that model cannot be loaded, the hashed lexical
 * embedder stands in, with one warning, so the main job still runs on a machine without the model;
 * but never for a data dir whose vectors came from a real model (that would mix two vector spaces),
 * and never when `embedding.fallback` is `error`.
 */
export async function loadEmbedder(config: Config['embedding'], options: LoadEmbedderOptions = {}): Promise<Embedder> {
  if (config.model === HASHED_MODEL) return new HashedEmbedder();
  try {
    return await TransformersEmbedder.load({
      model: config.model,
      modelDir: config.modelDir,
      cacheDir: config.cacheDir,
      allowRemote: config.allowRemote,
      batchSize: config.batchSize,
    });
  } catch (cause) {
    const recorded = options.recorded ?? null;
    if (config.fallback === 'error' || (recorded !== null && recorded.model !== HASHED_MODEL)) throw cause;
    const reason = cause instanceof MemexError ? cause.message : String(cause);
    options.onWarning?.({ kind: 'embedding-fallback', model: config.model, reason });
    return new HashedEmbedder();
  }
}

export function describeEmbeddingWarning(warning: EmbeddingWarning): string {
  return (
    `${warning.reason}. Using the hashed lexical fallback (${HASHED_MODEL}), which matches words, not meaning. ` +
    'For semantic search, set MEMEX_MODEL_DIR to a local transformers.js model folder (and MEMEX_MODEL to its id), ' +
    'or run once with internet access so the model downloads; then run `memex reindex`.'
  );
}
