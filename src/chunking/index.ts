export { chunkText, chunkTextAsync, type ChunkingOptions, type TextPiece, type TokenCounter } from './chunk-text.js';
export { chunkMessage, chunkMessages, chunkSource, chunkingFor, DEFAULT_MAX_CHUNK_TOKENS } from './chunk-source.js';
