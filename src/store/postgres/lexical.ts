import type { Pool, PoolClient } from 'pg';
import { termCounts, type TermAnalysis } from '../../core/index.js';
import { SCHEMA_LOCK } from './migrations.js';
import { inTransaction } from './transaction.js';

/** Postgres refuses a tsvector lexeme of 2 KiB or more; a term that long is dropped from both sides. */
export const MAX_LEXEME_BYTES = 2046;

/** The analysis the database's chunk terms were written with, or null before the first chunks. */
export async function readAnalysis(client: Pool | PoolClient): Promise<TermAnalysis | null> {
  const row = (await client.query<TermAnalysis>('SELECT stopwords, stemming FROM memex.lexical')).rows[0];
  return row ? { stopwords: row.stopwords, stemming: row.stemming } : null;
}

/**
 * The recorded analysis, recording `wanted` when none is (with the first chunks, as the model is).
 * A recorded analysis wins over the config: rows already written keep their terms, and mixing two
 * analyses would make terms that never meet.
 */
export async function recordAnalysis(pool: Pool, wanted: TermAnalysis): Promise<TermAnalysis> {
  const recorded = await readAnalysis(pool);
  if (recorded) return recorded;
  return inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
    await client.query('INSERT INTO memex.lexical (stopwords, stemming) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING', [wanted.stopwords, wanted.stemming]);
    return (await readAnalysis(client)) ?? wanted;
  });
}

/** A chunk's lexical columns: its distinct terms as tsvector text, each term's count, its BM25 length. */
export function chunkTerms(text: string, analysis: TermAnalysis): { lexemes: string[]; term_counts: Record<string, number>; term_length: number } {
  const { counts, length } = termCounts(text, analysis);
  const term_counts: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const [term, count] of counts) if (Buffer.byteLength(term) <= MAX_LEXEME_BYTES) term_counts[term] = count;
  return { lexemes: Object.keys(term_counts), term_counts, term_length: length };
}
