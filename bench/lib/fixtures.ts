import { readFileSync } from 'node:fs';
import type { PoolClient } from 'pg';
import type { Chunk, Message, TermAnalysis } from '../../src/core/index.js';
import { chunkTerms, countChunks } from '../../src/store/postgres/index.js';
import { LOCOMO } from '../locomo.js';

/** mulberry32: a small seeded PRNG, so every backend gets the same fake vectors. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Scales `row` to unit length in place. */
export function normalize(row: Float32Array): Float32Array {
  let norm = 0;
  for (const x of row) norm += x * x;
  norm = Math.sqrt(norm) || 1;
  for (let d = 0; d < row.length; d++) row[d] = (row[d] as number) / norm;
  return row;
}

/** A fake embedding: `count` unit-length rows of uniform noise, the same for every backend. */
export function fakeVectors(count: number, seed: number, dimension: number): Float32Array[] {
  const next = prng(seed);
  return Array.from({ length: count }, () => normalize(Float32Array.from({ length: dimension }, () => next() * 2 - 1)));
}

/**
 * A fake embedding with structure: rows scattered around `clusters` random centres, as a model's
 * vectors crowd around topics. Uniform noise in 512 dimensions has no neighbourhoods at all, which
 * no model produces and which is the worst case for any graph index; this is nearer the real thing,
 * still named as fake.
 */
export function clusteredVectors(count: number, seed: number, dimension: number, clusters: number, spread: number): Float32Array[] {
  const next = prng(seed);
  const gauss = (): number => Math.sqrt(-2 * Math.log(next() || 1e-12)) * Math.cos(2 * Math.PI * next());
  const centres = Array.from({ length: clusters }, () => normalize(Float32Array.from({ length: dimension }, gauss)));
  const scale = spread / Math.sqrt(dimension);
  return Array.from({ length: count }, () => {
    const centre = centres[Math.floor(next() * clusters)] as Float32Array;
    return normalize(Float32Array.from(centre, (x) => x + gauss() * scale));
  });
}

/** `row` moved by noise of about `amount` (relative to its unit length), unit length again: a query near a stored row. */
export function perturbed(row: Float32Array, amount: number, next: () => number): Float32Array {
  const scale = amount / Math.sqrt(row.length);
  const gauss = (): number => Math.sqrt(-2 * Math.log(next() || 1e-12)) * Math.cos(2 * Math.PI * next());
  return normalize(Float32Array.from(row, (x) => x + gauss() * scale));
}

/** One chunk per message (a stand-in for the chunker; its token count is a rough guess, not the model's). */
export function chunkOf(message: Message): Chunk {
  return {
    chunkId: `${message.id}:0`,
    source: { kind: 'message', messageId: message.id, role: message.role, createdAt: message.createdAt },
    part: { index: 0, count: 1 },
    span: { start: 0, end: message.content.length },
    text: message.content,
    tokens: Math.ceil(message.content.length / 4),
  };
}

export interface EvidenceQuestion {
  conversation: string;
  text: string;
  /** The dia ids of the turns that hold the answer. */
  refs: string[];
}

/** LoCoMo questions (category 5, the unanswerable, excluded) with evidence among `known` (`conversation/diaId`), as in bench/quality.ts. */
export function evidenceQuestions(known: Set<string>): EvidenceQuestion[] {
  const samples = JSON.parse(readFileSync(LOCOMO, 'utf8')) as { sample_id: string; qa: { question: string; evidence?: string[]; category: number }[] }[];
  return samples.flatMap((sample) =>
    sample.qa.flatMap((qa) => {
      if (qa.category === 5) return [];
      const refs = (qa.evidence ?? []).flatMap((e) => e.split(/[;\s]+/)).filter((id) => known.has(`${sample.sample_id}/${id}`));
      return refs.length > 0 ? [{ conversation: sample.sample_id, text: qa.question, refs }] : [];
    }),
  );
}

/** pgvector's text form of a row. */
export function vectorText(v: ArrayLike<number>): string {
  return `[${Array.prototype.join.call(v, ',')}]`;
}

export interface BulkChunk {
  sessionId: string;
  /** Chunk id; the message id is the same (one chunk per message). */
  id: string;
  role: 'user' | 'assistant';
  text: string;
  vector: ArrayLike<number>;
}

/**
 * Writes chunk rows straight into memex.chunks, one statement per call, and counts them into the
 * user's lexical statistics as the store does (run it as the user, inside withUser, so row-level
 * security checks every row). For loading benchmarks in bulk: the Store's
 * appendVectors checks each batch against the session's messages and feeds the HNSW index row by
 * row, at tens of rows/s on PGlite. Provenance points at messages that need not exist.
 */
export async function insertChunks(client: PoolClient, userId: string, model: string, analysis: TermAnalysis, rows: BulkChunk[]): Promise<void> {
  // The terms the store writes with each chunk (src/store/postgres/lexical.ts), with the recorded analysis.
  const terms = rows.map((r) => chunkTerms(r.text, analysis));
  await client.query(
    `INSERT INTO memex.chunks (user_id, session_id, id, source_kind, message_id, source, part_index, part_count, span_start, span_end, text, tokens, model, embedding,
                               lexemes, term_counts, term_length)
     SELECT $1, s, i, 'message', i, jsonb_build_object('kind', 'message', 'messageId', i, 'role', r, 'createdAt', '2025-01-01T00:00:00.000Z'), 0, 1, 0, length(t), t, 1, $2, v::vector,
            array_to_tsvector(ARRAY(SELECT jsonb_object_keys(tc))), tc, tl
       FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::jsonb[], $9::int[]) AS x(s, i, r, t, v, tc, tl)`,
    [
      userId,
      model,
      rows.map((r) => r.sessionId),
      rows.map((r) => r.id),
      rows.map((r) => r.role),
      rows.map((r) => r.text),
      rows.map((r) => vectorText(r.vector)),
      terms.map((t) => JSON.stringify(t.term_counts)),
      terms.map((t) => t.term_length),
    ],
  );
  await countChunks(client, userId, rows.map((r, i) => ({ session_id: r.sessionId, id: r.id, ...(terms[i] as ReturnType<typeof chunkTerms>) })));
}
