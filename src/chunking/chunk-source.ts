import type { Chunk, ChunkSource, Message } from '../core/index.js';
import { chunkText, type ChunkingOptions } from './chunk-text.js';

/** Chunks of one source text (a message's content, or one page of a file), with their provenance. */
export function chunkSource(source: ChunkSource, text: string, options: ChunkingOptions): Chunk[] {
  const pieces = chunkText(text, options);
  const prefix = source.kind === 'message' ? source.messageId : source.page === undefined ? source.fileId : `${source.fileId}:${source.page}`;
  return pieces.map((piece, index) => ({
    chunkId: `${prefix}:${index}`,
    source,
    part: { index, count: pieces.length },
    span: { start: piece.start, end: piece.end },
    text: piece.text,
    tokens: piece.tokens,
  }));
}

export function chunkMessage(message: Message, options: ChunkingOptions): Chunk[] {
  return chunkSource({ kind: 'message', messageId: message.id, role: message.role, createdAt: message.createdAt }, message.content, options);
}

/** Default sizes: see config `chunking` for the trade-offs. */
export const DEFAULT_MAX_CHUNK_TOKENS = 256;

/**
 * Chunking options for a model: the configured size, never above what the model reads (nothing is
 * silently truncated); the overlap defaults to an eighth of the size.
 */
export function chunkingFor(
  config: { maxTokens: number | null; overlapTokens: number | null },
  model: { maxTokens: number; countTokens: (text: string) => number },
): ChunkingOptions {
  const maxTokens = Math.min(config.maxTokens ?? DEFAULT_MAX_CHUNK_TOKENS, model.maxTokens);
  const overlapTokens = Math.min(config.overlapTokens ?? Math.floor(maxTokens / 8), Math.floor(maxTokens / 2));
  return { maxTokens, overlapTokens, countTokens: (text) => model.countTokens(text) };
}
