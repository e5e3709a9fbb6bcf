export * from './embedder.js';
export { HashedEmbedder } from './hashed.js';
export { TransformersEmbedder, type TransformersEmbedderOptions } from './transformers.js';
export { loadEmbedder, describeEmbeddingWarning, type EmbeddingWarning, type LoadEmbedderOptions } from './load.js';
