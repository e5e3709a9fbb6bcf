import { MemexError } from '../core/index.js';
import type { VectorBatch } from './store.js';

/**
 * The batch's dimension (null when empty), after checking what every backend needs of rows before
 * it writes any: one vector per chunk, Float32Arrays of one non-zero length, every value a finite
 * number, and every chunk's token count a count. (Ingest fills a whole message's count from its
 * embedding, so a count left unfilled, negative, would otherwise be stored and its row dropped by
 * the next reader.)
 */
export function checkVectorBatch(batch: VectorBatch): number | null {
  if (batch.chunks.length !== batch.vectors.length) {
    throw new MemexError('MEMEX_INVALID_INPUT', `a vector batch needs one vector per chunk (got ${batch.chunks.length} chunks, ${batch.vectors.length} vectors)`);
  }
  for (const chunk of batch.chunks) {
    if (!Number.isSafeInteger(chunk.tokens) || chunk.tokens < 0) {
      throw new MemexError('MEMEX_INVALID_INPUT', `chunk ${chunk.chunkId} has ${chunk.tokens} tokens: a count must be a whole number, 0 or more`);
    }
  }
  const first = batch.vectors[0];
  if (!first) return null;
  const dimension = first.length;
  for (const vector of batch.vectors) {
    if (!(vector instanceof Float32Array) || vector.length !== dimension || dimension === 0) {
      throw new MemexError('MEMEX_INVALID_INPUT', `vectors must be Float32Arrays of one length (the first has ${dimension})`);
    }
    for (const value of vector) if (!Number.isFinite(value)) throw new MemexError('MEMEX_INVALID_INPUT', 'a vector holds a value that is not a finite number');
  }
  return dimension;
}
