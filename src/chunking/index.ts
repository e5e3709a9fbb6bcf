export { chunkText, chunkTextAsync, type ChunkingOptions, type TextPiece, type TokenCounter } from './chunk-text.js';
export { chunkMessage, chunkMessages, chunkSource, chunkingFor, DEFAULT_MAX_CHUNK_TOKENS, OFFLOAD_CHARS, rechunk, UNCHECKED, UNCOUNTED } from './chunk-source.js';
