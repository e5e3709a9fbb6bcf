import { MemexError } from '../core/index.js';
import type { TextPiece } from '../chunking/index.js';

export interface EmbedOptions {
  /** Checked between model calls: a cancelled embed rejects with MEMEX_ABORTED and returns nothing. */
  signal?: AbortSignal;
  /** Someone waits for these rows (a query): they go before queued bulk work where the embedder queues. */
  urgent?: boolean;
  /**
   * False: neither answer from nor keep the embedder's memory of recent texts (where it has one),
   * so every text goes through the model: what a benchmark of the model itself needs.
   */
  remember?: boolean;
  /**
   * Filled, where given (as long as `texts`), with each text's length in the model's tokens as the
   * model read it, special tokens included: what `countTokens` gives for a text that fits, counted
   * by the embedding's own tokenizing at no extra cost. An embedder that cannot tell leaves an
   * entry as it was (callers fill it in with -1 and count the rest themselves).
   */
  tokens?: Int32Array;
}

/**
 * Turns texts into unit-length float32 vectors. Every implementation passes the same conformance
 * suite (test/embedding/conformance.ts).
 */
export interface Embedder {
  /** Recorded in memex.json and in every vector line: rows of two models never mix. */
  readonly modelId: string;
  readonly dimension: number;
  /** The longest input the model reads, in its own tokens; chunks are sized to stay under it. */
  readonly maxTokens: number;
  /**
   * The exact length of `text` in the model's tokens, special tokens included: what `embed` feeds
   * the model. Synchronous because chunking calls it for every paragraph and sentence it weighs.
   */
  countTokens(text: string): number;
  /**
   * One row per text, in order, each of length `dimension` and L2 norm 1. Empty or whitespace-only
   * text gives the zero vector (similar to nothing), never NaN.
   */
  embed(texts: readonly string[], options?: EmbedOptions): Promise<Float32Array[]>;
  /**
   * Optional: `chunkText` of each text with this model's `countTokens`, run where the tokenizer's
   * work does not hold the caller's event loop (the model's thread). The same pieces, in order.
   */
  chunk?(texts: readonly string[], sizes: { maxTokens: number; overlapTokens: number; lines: boolean }): Promise<TextPiece[][]>;
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new MemexError('MEMEX_ABORTED', 'embedding was cancelled', { cause: signal.reason });
  }
}

export function isBlank(text: string): boolean {
  return text.trim() === '';
}

/**
 * Scales `row` to unit length in place. A row with a NaN, an infinity or no length at all (what a
 * model gives for input it has no tokens for) becomes the zero vector instead of poisoning search.
 */
export function normalizeInPlace(row: Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < row.length; i++) {
    const x = row[i] as number;
    sum += x * x;
  }
  if (!Number.isFinite(sum) || sum === 0) {
    row.fill(0);
    return row;
  }
  const scale = 1 / Math.sqrt(sum);
  for (let i = 0; i < row.length; i++) row[i] = (row[i] as number) * scale;
  return row;
}

/** `count` rows of `dimension` floats as views over one buffer: one allocation per call. */
export function allocateRows(count: number, dimension: number): Float32Array[] {
  const data = new Float32Array(count * dimension);
  return Array.from({ length: count }, (_, i) => data.subarray(i * dimension, (i + 1) * dimension));
}

export function assertTexts(texts: readonly string[]): void {
  if (!Array.isArray(texts) || texts.some((t) => typeof t !== 'string')) {
    throw new MemexError('MEMEX_INVALID_INPUT', 'embed() takes an array of strings');
  }
}
