import { MemexError } from '../core/index.js';

/** The exact length of a text in the embedding model's tokens (special tokens included). */
export type TokenCounter = (text: string) => number;

export interface ChunkingOptions {
  /** Largest chunk, in tokens as `countTokens` measures them. */
  maxTokens: number;
  /** Tokens of the previous chunk's end repeated at the next one's start. Below half of `maxTokens`. */
  overlapTokens: number;
  countTokens: TokenCounter;
  /**
   * Cut an oversized paragraph at line breaks before sentence ends: for line-structured text
   * (Markdown lists and tables, code, CSV), where a line is the unit of meaning.
   */
  lines?: boolean;
  /**
   * Chunks texts elsewhere with the same counter and sizes (the embedding model's thread, where its
   * tokenizer's work does not hold this event loop); `chunkMessages` and `chunkSource` use it for
   * texts up to `OFFLOAD_CHARS`. Absent, chunking runs here.
   */
  offload?: (texts: readonly string[], lines: boolean) => Promise<TextPiece[][]>;
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
const LINE = /[^\n]+/g;

/** How a text is cut, coarsest first: a unit too long at one level is cut at the next. */
type Level = 'paragraph' | 'line' | 'sentence' | 'word' | 'character';
const PROSE: readonly Level[] = ['paragraph', 'sentence', 'word', 'character'];
const LINES: readonly Level[] = ['paragraph', 'line', 'sentence', 'word', 'character'];
const WORD = /\S+/g;

/**
 * The most characters one call of the token counter is given: `maxTokens` times this. Every count
 * is then bounded, which keeps chunking linear in the text's length (a 100k-character run without
 * a space used to be re-counted from each cut to its end: quadratic, 41.5 s). Real text has 3-6
 * characters a token and vocabularies' longest pieces are about 16-20; a denser run is only cut
 * into smaller chunks than the model could take, never into ones it cannot.
 */
const MAX_CHARS_PER_TOKEN = 32;

/**
 * Characters counted between two turns of the event loop in `chunkTextAsync`: with a real
 * tokenizer (about 2.5 µs a character) a turn comes every 20 ms or so. Lower it for snappier
 * servers, raise it for throughput; the result does not change.
 */
const YIELD_EVERY_CHARS = 8_192;

/**
 * Characters counted since the event loop last had a turn, across calls: many short texts in a
 * row (a batch of messages, a document of small sections) add up like one long text.
 */
let sinceYield = 0;

/** A step of chunking work: yields when it has counted `YIELD_EVERY_CHARS` since the last yield. */
type Work<T> = Generator<void, T, void>;

interface Context {
  text: string;
  maxTokens: number;
  overlapTokens: number;
  /** Tokens of the empty text (the model's [CLS], [SEP], ...). */
  fixed: number;
  /** `maxTokens * MAX_CHARS_PER_TOKEN`: no count is of a longer text. */
  maxChars: number;
  countTokens: TokenCounter;
  levels: readonly Level[];
}

/**
 * Splits `text` into pieces that each fit `maxTokens`, so the model never silently cuts one off.
 * A text that fits is one piece (a short chat turn stays whole). A longer one is cut at paragraph
 * breaks, then inside an oversized paragraph at sentence ends, then inside an oversized sentence at
 * spaces, and only a single "word" longer than the limit (a URL, a base64 blob) is cut between
 * characters. Pieces are then packed greedily up to the limit, each checked by an exact count,
 * and consecutive pieces share about `overlapTokens` of text. The work is linear in the length.
 */
export function chunkText(text: string, options: ChunkingOptions): TextPiece[] {
  const work = chunking(text, options);
  for (;;) {
    const step = work.next();
    if (step.done) return step.value;
  }
}

/**
 * `chunkText`, giving the event loop a turn after every few thousand characters it counts: a
 * megabyte of text takes seconds of tokenizing, and a server must keep answering meanwhile.
 */
export async function chunkTextAsync(text: string, options: ChunkingOptions): Promise<TextPiece[]> {
  const work = chunking(text, options);
  for (;;) {
    const step = work.next();
    if (step.done) return step.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

function* chunking(text: string, options: ChunkingOptions): Work<TextPiece[]> {
  const { maxTokens, overlapTokens, countTokens } = options;
  if (!(maxTokens >= 1) || !(overlapTokens >= 0) || overlapTokens * 2 > maxTokens) {
    throw new MemexError('MEMEX_CONFIG_INVALID', `chunking needs maxTokens >= 1 and overlapTokens at most half of it (got ${maxTokens} and ${overlapTokens})`);
  }
  const [start, end] = trimmed(text, 0, text.length);
  if (start >= end) return [];
  // Every unit alone costs the model's fixed tokens ([CLS], [SEP], ...); joined units pay them once.
  const context: Context = { text, maxTokens, overlapTokens, fixed: countTokens(''), maxChars: maxTokens * MAX_CHARS_PER_TOKEN, countTokens, levels: options.lines ? LINES : PROSE };
  if (end - start <= context.maxChars) {
    const tokens = yield* count(context, start, end);
    if (tokens <= maxTokens) return [{ start, end, text: text.slice(start, end), tokens }];
  }
  const units: Unit[] = [];
  yield* split(context, start, end, 0, units);
  return yield* pack(context, units);
}

/** Packs units greedily into pieces that fit, consecutive pieces sharing about `overlapTokens`. */
function* pack(context: Context, units: Unit[]): Work<TextPiece[]> {
  const { maxTokens, overlapTokens, fixed, maxChars } = context;
  const pieces: TextPiece[] = [];
  let first = 0;
  while (first < units.length) {
    const start = (units[first] as Unit).start;
    let last = first;
    let estimate = (units[first] as Unit).tokens;
    while (last + 1 < units.length && estimate + (units[last + 1] as Unit).tokens - fixed <= maxTokens && (units[last + 1] as Unit).end - start <= maxChars) {
      last += 1;
      estimate += (units[last] as Unit).tokens - fixed;
    }
    let piece = yield* measure(context, units, first, last);
    // Tokens are not quite additive (a boundary can merge or split one); the exact count decides.
    while (piece.tokens > maxTokens && last > first) {
      last -= 1;
      piece = yield* measure(context, units, first, last);
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

/** Counts `text[start, end)`, yielding first when enough has been counted since the last turn. */
function* count(context: Context, start: number, end: number): Work<number> {
  // A call has a cost of its own, whatever its length.
  sinceYield += end - start + 16;
  if (sinceYield >= YIELD_EVERY_CHARS) {
    sinceYield = 0;
    yield;
  }
  return context.countTokens(context.text.slice(start, end));
}

function* measure(context: Context, units: Unit[], first: number, last: number): Work<TextPiece> {
  const start = (units[first] as Unit).start;
  const end = (units[last] as Unit).end;
  const tokens = first === last ? (units[first] as Unit).tokens : yield* count(context, start, end);
  return { start, end, text: context.text.slice(start, end), tokens };
}

/** Units of [start, end) that each fit, at the coarsest of `context.levels` (from `depth` on) that allows. */
function* split(context: Context, start: number, end: number, depth: number, units: Unit[]): Work<void> {
  const level = context.levels[depth] ?? 'character';
  for (const [s, e] of boundaries(context.text, start, end, level)) {
    const [from, to] = trimmed(context.text, s, e);
    if (from >= to) continue;
    if (level === 'character') {
      yield* splitCharacters(context, from, to, units);
      continue;
    }
    // A run longer than any count may be is cut finer without counting it whole.
    if (to - from <= context.maxChars) {
      const tokens = yield* count(context, from, to);
      if (tokens <= context.maxTokens) {
        units.push({ start: from, end: to, tokens });
        continue;
      }
    }
    yield* split(context, from, to, depth + 1, units);
  }
}

function* boundaries(text: string, start: number, end: number, level: Level): Generator<[number, number]> {
  const slice = text.slice(start, end);
  if (level === 'paragraph') {
    let from = 0;
    for (const match of slice.matchAll(PARAGRAPH_BREAK)) {
      yield [start + from, start + match.index];
      from = match.index + match[0].length;
    }
    yield [start + from, end];
  } else if (level === 'line') {
    for (const match of slice.matchAll(LINE)) yield [start + match.index, start + match.index + match[0].length];
  } else if (level === 'sentence') {
    for (const segment of sentences.segment(slice)) yield [start + segment.index, start + segment.index + segment.segment.length];
  } else if (level === 'word') {
    for (const match of slice.matchAll(WORD)) yield [start + match.index, start + match.index + match[0].length];
  } else {
    yield [start, end];
  }
}

/**
 * Cuts one unbreakable run into prefixes that fit, each nearly the longest that does (within 1/32),
 * never inside a surrogate pair. The cut is found by interpolating on the characters a token seen
 * so far, then bisecting: a few counts of about a piece's length each, so linear in the run.
 */
function* splitCharacters(context: Context, start: number, end: number, units: Unit[]): Work<void> {
  const { maxTokens, fixed } = context;
  const budget = Math.max(1, maxTokens - fixed);
  // Characters a token: a guess at first, then what the last piece had.
  let perToken = 4;
  let from = start;
  while (from < end) {
    const room = Math.min(end - from, context.maxChars);
    let fits = 0;
    let fitsTokens = 0;
    let over = room + 1;
    let guess = Math.min(room, Math.max(1, Math.floor(perToken * budget)));
    for (let step = 0; ; step++) {
      const tokens = yield* count(context, from, from + guess);
      if (tokens <= maxTokens) {
        fits = guess;
        fitsTokens = tokens;
      } else {
        over = guess;
      }
      if (fits === room || over - fits <= Math.max(1, fits >> 5)) break;
      // Interpolate while it converges quickly; bisect after that, so the steps stay few.
      const interpolated = Math.floor((guess * budget) / Math.max(1, tokens - fixed));
      guess = step < 3 ? Math.min(over - 1, Math.max(fits + 1, interpolated)) : Math.floor((fits + over) / 2);
    }
    // Even one character may be over a tiny limit: it goes alone (a piece is never empty).
    let to = from + Math.max(1, fits);
    if (to < end && isHighSurrogate(context.text.charCodeAt(to - 1)) && to - 1 > from) to -= 1;
    if (to - from !== fits) fitsTokens = yield* count(context, from, to);
    units.push({ start: from, end: to, tokens: fitsTokens });
    perToken = (to - from) / Math.max(1, fitsTokens - fixed);
    from = to;
  }
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function trimmed(text: string, start: number, end: number): [number, number] {
  while (start < end && /\s/.test(text[start] as string)) start++;
  while (end > start && /\s/.test(text[end - 1] as string)) end--;
  return [start, end];
}
