import type { Chunk } from '../core/index.js';
import { rechunk, UNCHECKED, UNCOUNTED, type ChunkingOptions } from '../chunking/index.js';
import type { EmbedOptions, Embedder } from '../embedding/index.js';

/**
 * The rows of the chunks of `groups` (in order, as one model call would take them), every chunk's
 * `tokens` counted. A chunk chunking left UNCOUNTED gets the count the embedding read it with (or,
 * where the embedder gives none, `countTokens`). One left UNCHECKED (a whole message taken on
 * trust) keeps that count if it fits; if not, it is cut with the tokenizer after all, its pieces
 * embedded and put in its place in its group: the groups then hold what is to be stored, and the
 * rows are theirs.
 */
export async function embedChunks(embedder: Embedder, groups: Chunk[][], chunking: ChunkingOptions, options: Omit<EmbedOptions, 'tokens'> = {}): Promise<Float32Array[]> {
  const all = groups.flat();
  const tokens = new Int32Array(all.length).fill(UNCOUNTED);
  const rows = await embedder.embed(
    all.map((chunk) => chunk.text),
    { ...options, tokens },
  );
  const cut = new Map<Chunk, Chunk[]>();
  for (const [i, chunk] of all.entries()) {
    if (chunk.tokens !== UNCOUNTED && chunk.tokens !== UNCHECKED) continue;
    const fromModel = tokens[i] !== UNCOUNTED;
    const count = fromModel ? (tokens[i] as number) : embedder.countTokens(chunk.text);
    // The model reads at most maxTokens: a count of that many may be of a text it cut short.
    if (chunk.tokens === UNCOUNTED || (count <= chunking.maxTokens && !(fromModel && count >= embedder.maxTokens))) chunk.tokens = count;
    else cut.set(chunk, await rechunk(chunk, chunking));
  }
  if (cut.size === 0) return rows;
  const pieces = [...cut.values()].flat();
  const pieceRows = await embedder.embed(
    pieces.map((piece) => piece.text),
    options,
  );
  const rowOf = new Map<Chunk, Float32Array>(all.map((chunk, i) => [chunk, rows[i] as Float32Array]));
  pieces.forEach((piece, i) => rowOf.set(piece, pieceRows[i] as Float32Array));
  for (const group of groups) {
    const replaced = group.flatMap((chunk) => cut.get(chunk) ?? [chunk]);
    group.splice(0, group.length, ...replaced);
  }
  return groups.flat().map((chunk) => rowOf.get(chunk) as Float32Array);
}
