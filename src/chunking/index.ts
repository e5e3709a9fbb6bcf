export { chunkText, type ChunkingOptions, type TextPiece, type TokenCounter } from './chunk-text.js';
export { chunkMessage, chunkSource, chunkingFor, DEFAULT_MAX_CHUNK_TOKENS } from './chunk-source.js';
