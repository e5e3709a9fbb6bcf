import type { Chunk, ChunkSource, Message } from '../core/index.js';
import { chunkText, chunkTextAsync, type ChunkingOptions, type TextPiece } from './chunk-text.js';

/**
 * Chunks of one source text (a message's content, or one page of a file), with their provenance.
 * Gives the event loop turns while it works (a long text takes seconds to tokenize).
 */
export async function chunkSource(source: ChunkSource, text: string, options: ChunkingOptions): Promise<Chunk[]> {
  const { offload } = options;
  if (offload && text.length <= OFFLOAD_CHARS) return withProvenance(source, (await offload([text], options.lines ?? false))[0] ?? []);
  return withProvenance(source, await chunkTextAsync(text, options));
}

/**
 * The most characters one offloaded job carries: the model's thread runs one job at a time, so a
 * query waits behind at most this much tokenizing (about 1 us a character for the offline model).
 * Longer texts are chunked in this thread, giving the event loop turns.
 */
export const OFFLOAD_CHARS = 8_000;

function withProvenance(source: ChunkSource, pieces: TextPiece[]): Chunk[] {
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

function messageSource(message: Message): ChunkSource {
  return { kind: 'message', messageId: message.id, role: message.role, createdAt: message.createdAt };
}

/** The chunks of one message, synchronously (for callers that chunk a few short texts). */
export function chunkMessage(message: Message, options: ChunkingOptions): Chunk[] {
  return withProvenance(messageSource(message), chunkText(message.content, options));
}

/** A chunk's `tokens` when it fits for sure but is not counted yet (see `chunkMessages`' `countLater`). */
export const UNCOUNTED = -1;

/**
 * A chunk's `tokens` when it is a whole message taken on trust (see `chunkMessages`' `countLater`):
 * the embedding's count says whether it fits, and if not, `rechunk` cuts it.
 */
export const UNCHECKED = -2;

/**
 * UTF-8 bytes a token at most, for a message taken whole on trust. Prose runs 4-6 characters a
 * token and chat turns are prose, so nearly every one fits; a denser text (code, digits, a script
 * of one character a token) is cut after its embedding shows it does not, at the cost of that one
 * embedding.
 */
const TRUSTED_BYTES_PER_TOKEN = 3;

/**
 * A message as one piece without a tokenizer call: UNCOUNTED when it fits whatever the tokenizer
 * (ASCII, and short enough that a token for every character, one more for a leading word marker
 * such as SentencePiece's "▁" and the model's special tokens stay within `maxTokens`: every
 * tokenizer Memex loads gives an ASCII character at most one token); UNCHECKED when it likely fits
 * (at most TRUSTED_BYTES_PER_TOKEN bytes a token); null when it needs chunking now.
 */
function whole(text: string, maxTokens: number, fixed: number): TextPiece | null {
  const trusted = maxTokens * TRUSTED_BYTES_PER_TOKEN;
  // Trimming cannot bring a text under the limit from more than twice it.
  if (text.length > trusted * 2) return null;
  const start = text.length - text.trimStart().length;
  const end = text.trimEnd().length;
  if (start >= end) return null;
  const piece = text.slice(start, end);
  if (piece.length <= maxTokens - fixed - 1 && isAscii(piece)) return { start, end, text: piece, tokens: UNCOUNTED };
  if (Buffer.byteLength(piece) <= trusted) return { start, end, text: piece, tokens: UNCHECKED };
  return null;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * A whole message taken UNCHECKED that turned out too long, cut as `chunkMessages` without
 * `countLater` would have cut the message: the same pieces, spans and ids.
 */
export async function rechunk(chunk: Chunk, options: ChunkingOptions): Promise<Chunk[]> {
  const pieces = await chunkSource(chunk.source, chunk.text, options);
  return pieces.map((piece) => ({ ...piece, span: { start: piece.span.start + chunk.span.start, end: piece.span.end + chunk.span.start } }));
}

/**
 * The chunks of messages in order, giving the event loop turns while it works. With `countLater`,
 * a message short enough to be one chunk (most chat turns) is taken whole without a tokenizer
 * call, its `tokens` UNCOUNTED or UNCHECKED: the caller counts it with the embedding's own count
 * and cuts one that turns out too long (ingest/embed-chunks.ts).
 */
export async function chunkMessages(messages: readonly Message[], options: ChunkingOptions, { countLater = false } = {}): Promise<Chunk[]> {
  const chunks: Chunk[] = [];
  const { offload } = options;
  const fixed = countLater ? options.countTokens('') : 0;
  const taken = (message: Message): TextPiece | null => (countLater ? whole(message.content, options.maxTokens, fixed) : null);
  if (!offload) {
    for (const message of messages) {
      const piece = taken(message);
      for (const chunk of piece ? withProvenance(messageSource(message), [piece]) : await chunkSource(messageSource(message), message.content, options)) chunks.push(chunk);
    }
    return chunks;
  }
  // Short messages go to the model's thread together, up to OFFLOAD_CHARS a job; a longer one alone.
  // Each keeps its place: the chunks go out in the messages' order.
  const slots: Chunk[][] = [];
  let batch: { message: Message; slot: Chunk[] }[] = [];
  let chars = 0;
  const send = async (): Promise<void> => {
    if (batch.length === 0) return;
    const pieces = await offload(
      batch.map(({ message }) => message.content),
      options.lines ?? false,
    );
    batch.forEach(({ message, slot }, i) => slot.push(...withProvenance(messageSource(message), pieces[i] ?? [])));
    batch = [];
    chars = 0;
  };
  for (const message of messages) {
    const slot: Chunk[] = [];
    slots.push(slot);
    const piece = taken(message);
    if (piece) {
      slot.push(...withProvenance(messageSource(message), [piece]));
      continue;
    }
    if (chars + message.content.length > OFFLOAD_CHARS) await send();
    if (message.content.length > OFFLOAD_CHARS) {
      slot.push(...(await chunkSource(messageSource(message), message.content, options)));
      continue;
    }
    batch.push({ message, slot });
    chars += message.content.length;
  }
  await send();
  for (const slot of slots) for (const chunk of slot) chunks.push(chunk);
  return chunks;
}

/** Default sizes: see config `chunking` for the trade-offs. */
export const DEFAULT_MAX_CHUNK_TOKENS = 256;

/**
 * Chunking options for a model: the configured size, never above what the model reads (nothing is
 * silently truncated); the overlap defaults to an eighth of the size.
 */
export function chunkingFor(
  config: { maxTokens: number | null; overlapTokens: number | null },
  model: { maxTokens: number; countTokens: (text: string) => number; chunk?: (texts: readonly string[], sizes: { maxTokens: number; overlapTokens: number; lines: boolean }) => Promise<TextPiece[][]> },
): ChunkingOptions {
  const maxTokens = Math.min(config.maxTokens ?? DEFAULT_MAX_CHUNK_TOKENS, model.maxTokens);
  const overlapTokens = Math.min(config.overlapTokens ?? Math.floor(maxTokens / 8), Math.floor(maxTokens / 2));
  const { chunk } = model;
  return {
    maxTokens,
    overlapTokens,
    countTokens: (text: string) => model.countTokens(text),
    ...(chunk ? { offload: (texts: readonly string[], lines: boolean) => chunk.call(model, texts, { maxTokens, overlapTokens, lines }) } : {}),
  };
}
