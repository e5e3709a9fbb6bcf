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

/** The chunks of messages in order, giving the event loop turns while it works. */
export async function chunkMessages(messages: readonly Message[], options: ChunkingOptions): Promise<Chunk[]> {
  const chunks: Chunk[] = [];
  const { offload } = options;
  if (!offload) {
    for (const message of messages) for (const chunk of await chunkSource(messageSource(message), message.content, options)) chunks.push(chunk);
    return chunks;
  }
  // Short messages go to the model's thread together, up to OFFLOAD_CHARS a job; a longer one alone.
  let batch: Message[] = [];
  let chars = 0;
  const send = async (): Promise<void> => {
    if (batch.length === 0) return;
    const pieces = await offload(
      batch.map((message) => message.content),
      options.lines ?? false,
    );
    batch.forEach((message, i) => chunks.push(...withProvenance(messageSource(message), pieces[i] ?? [])));
    batch = [];
    chars = 0;
  };
  for (const message of messages) {
    if (chars + message.content.length > OFFLOAD_CHARS) await send();
    if (message.content.length > OFFLOAD_CHARS) {
      chunks.push(...(await chunkSource(messageSource(message), message.content, options)));
      continue;
    }
    batch.push(message);
    chars += message.content.length;
  }
  await send();
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
