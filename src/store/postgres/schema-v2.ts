/**
 * Migration 2: the lexical side as an inverted index with its statistics.
 *
 * - `chunk_terms`: one row per (term, chunk), the postings. The chunks' GIN index over `lexemes`
 *   could never be used: under row-level security a condition with an operator that is not
 *   leakproof (tsvector `@@`) is checked only after the policy, so every lexical search read all of
 *   the user's chunks. A b-tree over (user, term) is looked up with `=`, which is leakproof.
 * - `chunk_stats`, `term_stats`: BM25's N, summed length and document frequencies per user, which a
 *   search counted over the user's chunks (10 ms a query at 10k chunks on PGlite, ten times that at
 *   100k).
 *
 * And `imports`: what each `memex import` did (the flat files' `imported/manifests/`).
 *
 * The store keeps the lexical tables as it writes and deletes chunks (chunk-stats.ts), in the same
 * transaction, rather than triggers, so the tables distribute like the others (Citus runs no
 * triggers on distributed tables).
 */
export const SCHEMA_V2 = `
CREATE TABLE memex.chunk_stats (
  user_id text PRIMARY KEY REFERENCES memex.users (user_id) ON DELETE CASCADE,
  chunks bigint NOT NULL CHECK (chunks >= 0),
  -- The sum of the chunks' term_length, so the average is term_length / chunks.
  term_length bigint NOT NULL CHECK (term_length >= 0)
);

CREATE TABLE memex.chunk_terms (
  user_id text NOT NULL REFERENCES memex.users (user_id) ON DELETE CASCADE,
  term text NOT NULL,
  session_id text NOT NULL,
  chunk_id text NOT NULL,
  -- How often the chunk holds the term (its term_counts entry), and the chunk's BM25 length: with
  -- them in the index, a term's part of a chunk's score is read from the index alone.
  tf integer NOT NULL CHECK (tf > 0),
  term_length integer NOT NULL CHECK (term_length >= 0),
  PRIMARY KEY (user_id, term, session_id, chunk_id) INCLUDE (tf, term_length)
);

CREATE TABLE memex.imports (
  user_id text NOT NULL REFERENCES memex.users (user_id) ON DELETE CASCADE,
  id text NOT NULL CHECK (id ~ '^imp_[0-9a-z]{26}$'),
  -- The record as core/schemas.ts ImportRecordSchema has it.
  record jsonb NOT NULL,
  PRIMARY KEY (user_id, id)
);

CREATE TABLE memex.term_stats (
  user_id text NOT NULL REFERENCES memex.users (user_id) ON DELETE CASCADE,
  term text NOT NULL,
  -- How many of the user's chunks hold the term (its document frequency); rows at 0 are deleted.
  chunks bigint NOT NULL CHECK (chunks >= 0),
  PRIMARY KEY (user_id, term)
);

-- The statistics of chunks written before this migration, read as the owner: FORCE makes row-level
-- security hold the owner too, so it is lifted for this transaction only, before the new tables
-- get theirs.
ALTER TABLE memex.chunks NO FORCE ROW LEVEL SECURITY;
INSERT INTO memex.chunk_stats (user_id, chunks, term_length)
  SELECT user_id, count(*), sum(term_length) FROM memex.chunks GROUP BY user_id;
INSERT INTO memex.term_stats (user_id, term, chunks)
  SELECT c.user_id, t.term, count(*) FROM memex.chunks c CROSS JOIN LATERAL unnest(tsvector_to_array(c.lexemes)) AS t(term) GROUP BY c.user_id, t.term;
INSERT INTO memex.chunk_terms (user_id, term, session_id, chunk_id, tf, term_length)
  SELECT c.user_id, e.key, c.session_id, c.id, e.value::int, c.term_length FROM memex.chunks c CROSS JOIN LATERAL jsonb_each_text(c.term_counts) AS e;
ALTER TABLE memex.chunks FORCE ROW LEVEL SECURITY;
-- Unused (see above), and slower to keep up than the postings.
DROP INDEX memex.chunks_lexemes;

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['chunk_terms', 'chunk_stats', 'term_stats', 'imports'] LOOP
    EXECUTE format('ALTER TABLE memex.%I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE memex.%I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format(
      'CREATE POLICY own_rows ON memex.%I USING (user_id = current_setting(''memex.user_id'', true)) '
      'WITH CHECK (user_id = current_setting(''memex.user_id'', true))', t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON memex.%I TO memex_app', t);
  END LOOP;
END
$$;

`;
