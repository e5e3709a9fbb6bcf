import { HASHED_MODEL } from '../core/index.js';
import { allocateRows, assertTexts, normalizeInPlace, throwIfAborted, type EmbedOptions, type Embedder } from './embedder.js';

const DIMENSION = 384;
const WORD = /[\p{L}\p{N}]+/gu;

/** FNV-1a, 32 bits: fast, well spread for short strings, and the same on every machine. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

function words(text: string): string[] {
  return text.normalize('NFKC').toLowerCase().match(WORD) ?? [];
}

/**
 * The fallback when no model can be loaded: each word, and each word's character trigrams (so
 * "meeting" and "meetings" overlap), is hashed to a signed slot of a fixed-size vector (the hashing
 * trick). It matches shared words, not meaning, so it is announced with a warning whenever it
 * stands in for a real model; it needs no files, so the main job still runs anywhere.
 */
export class HashedEmbedder implements Embedder {
  readonly modelId = HASHED_MODEL;
  readonly dimension = DIMENSION;
  /** It reads any length; chunking still caps chunks at its own default size. */
  readonly maxTokens = 8192;

  countTokens(text: string): number {
    return words(text).length;
  }

  embed(texts: readonly string[], options: EmbedOptions = {}): Promise<Float32Array[]> {
    // Through the Promise constructor, so bad input rejects like every other embedder's instead of throwing.
    return new Promise((resolve) => resolve(this.embedNow(texts, options)));
  }

  private embedNow(texts: readonly string[], options: EmbedOptions): Float32Array[] {
    assertTexts(texts);
    throwIfAborted(options.signal);
    const rows = allocateRows(texts.length, DIMENSION);
    const counts = options.tokens;
    for (const [i, text] of texts.entries()) {
      const row = rows[i] as Float32Array;
      const textWords = words(text);
      if (counts && i < counts.length) counts[i] = textWords.length;
      for (const word of textWords) {
        add(row, word, 1);
        if (word.length > 3) {
          const padded = `<${word}>`;
          for (let j = 0; j + 3 <= padded.length; j++) add(row, `#${padded.slice(j, j + 3)}`, 0.4);
        }
      }
      normalizeInPlace(row);
    }
    return rows;
  }
}

function add(row: Float32Array, feature: string, weight: number): void {
  const hash = fnv1a(feature);
  const slot = hash % DIMENSION;
  row[slot] = (row[slot] as number) + (hash & 0x80000000 ? -weight : weight);
}
