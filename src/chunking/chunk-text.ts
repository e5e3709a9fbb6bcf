import { MemexError } from '../core/index.js';

/** The exact length of a text in the embedding model's tokens (special tokens included). */
export type TokenCounter = (text: string) => number;

export interface ChunkingOptions {
  /** Largest chunk, in tokens as `countTokens` measures them. */
  maxTokens: number;
  /** Tokens of the previous chunk's end repeated at the next one's start. Below half of `maxTokens`. */
  overlapTokens: number;
  countTokens: TokenCounter;
}

/** A piece of a source text: `source.slice(start, end) === text`, and `text` fits the model. */
export interface TextPiece {
  start: number;
  end: number;
  text: string;
  tokens: number;
}

interface Unit {
  start: number;
  end: number;
  tokens: number;
}

const sentences = new Intl.Segmenter(undefined, { granularity: 'sentence' });
const PARAGRAPH_BREAK = /\n[^\S\n]*\n\s*/g;
const WORD = /\S+/g;

/**
 * Splits `text` into pieces that each fit `maxTokens`, so the model never silently cuts one off.
 * A text that fits is one piece (a short chat turn stays whole). A longer one is cut at paragraph
 * breaks, then inside an oversized paragraph at sentence ends, then inside an oversized sentence at
 * spaces, and only a single "word" longer than the limit (a URL, a base64 blob) is cut between
 * characters. Pieces are then packed greedily up to the limit, each checked by an exact count,
 * and consecutive pieces share about `overlapTokens` of text.
 */
export function chunkText(text: string, options: ChunkingOptions): TextPiece[] {
  const { maxTokens, overlapTokens, countTokens } = options;
  if (!(maxTokens >= 1) || !(overlapTokens >= 0) || overlapTokens * 2 > maxTokens) {
    throw new MemexError('MEMEX_CONFIG_INVALID', `chunking needs maxTokens >= 1 and overlapTokens at most half of it (got ${maxTokens} and ${overlapTokens})`);
  }
  const [start, end] = trimmed(text, 0, text.length);
  if (start >= end) return [];
  const whole = text.slice(start, end);
  const tokens = countTokens(whole);
  if (tokens <= maxTokens) return [{ start, end, text: whole, tokens }];

  // Every unit alone costs the model's fixed tokens ([CLS], [SEP], ...); joined units pay them once.
  const fixed = countTokens('');
  const units = split(text, start, end, 0, options);
  const pieces: TextPiece[] = [];
  let first = 0;
  while (first < units.length) {
    let last = first;
    let estimate = (units[first] as Unit).tokens;
    while (last + 1 < units.length && estimate + (units[last + 1] as Unit).tokens - fixed <= maxTokens) {
      last += 1;
      estimate += (units[last] as Unit).tokens - fixed;
    }
    let piece = measure(text, units, first, last, countTokens);
    // Tokens are not quite additive (a boundary can merge or split one); the exact count decides.
    while (piece.tokens > maxTokens && last > first) {
      last -= 1;
      piece = measure(text, units, first, last, countTokens);
    }
    pieces.push(piece);
    if (last + 1 >= units.length) break;
    let next = last + 1;
    let shared = 0;
    while (next - 1 > first && shared + (units[next - 1] as Unit).tokens - fixed <= overlapTokens) {
      next -= 1;
      shared += (units[next] as Unit).tokens - fixed;
    }
    first = next;
  }
  return pieces;
}

function measure(text: string, units: Unit[], first: number, last: number, countTokens: TokenCounter): TextPiece {
  const start = (units[first] as Unit).start;
  const end = (units[last] as Unit).end;
  const piece = text.slice(start, end);
  return { start, end, text: piece, tokens: first === last ? (units[first] as Unit).tokens : countTokens(piece) };
}

/** Units of [start, end) that each fit, at the coarsest level (0 paragraph, 1 sentence, 2 word, 3 character) that allows. */
function split(text: string, start: number, end: number, level: number, options: ChunkingOptions): Unit[] {
  const units: Unit[] = [];
  for (const [s, e] of boundaries(text, start, end, level)) {
    const [from, to] = trimmed(text, s, e);
    if (from >= to) continue;
    if (level === 3) {
      units.push(...splitCharacters(text, from, to, options));
      continue;
    }
    const tokens = options.countTokens(text.slice(from, to));
    if (tokens <= options.maxTokens) units.push({ start: from, end: to, tokens });
    else units.push(...split(text, from, to, level + 1, options));
  }
  return units;
}

function* boundaries(text: string, start: number, end: number, level: number): Generator<[number, number]> {
  const slice = text.slice(start, end);
  if (level === 0) {
    let from = 0;
    for (const match of slice.matchAll(PARAGRAPH_BREAK)) {
      yield [start + from, start + match.index];
      from = match.index + match[0].length;
    }
    yield [start + from, end];
  } else if (level === 1) {
    for (const segment of sentences.segment(slice)) yield [start + segment.index, start + segment.index + segment.segment.length];
  } else if (level === 2) {
    for (const match of slice.matchAll(WORD)) yield [start + match.index, start + match.index + match[0].length];
  } else {
    yield [start, end];
  }
}

/** Cuts one unbreakable run into the longest prefixes that fit, never inside a surrogate pair. */
function splitCharacters(text: string, start: number, end: number, options: ChunkingOptions): Unit[] {
  const units: Unit[] = [];
  let from = start;
  while (from < end) {
    let low = from + 1;
    let high = end;
    // The longest prefix that fits, by binary search on its exact count.
    while (low < high) {
      const mid = Math.ceil((low + high) / 2);
      if (options.countTokens(text.slice(from, mid)) <= options.maxTokens) low = mid;
      else high = mid - 1;
    }
    let to = low;
    if (to < end && isHighSurrogate(text.charCodeAt(to - 1)) && to - 1 > from) to -= 1;
    units.push({ start: from, end: to, tokens: options.countTokens(text.slice(from, to)) });
    from = to;
  }
  return units;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function trimmed(text: string, start: number, end: number): [number, number] {
  while (start < end && /\s/.test(text[start] as string)) start++;
  while (end > start && /\s/.test(text[end - 1] as string)) end--;
  return [start, end];
}
