/**
 * Migration 4: session tags and the trash (issue 19).
 *
 * - `sessions.tags`: the session's tags, sorted and unique (store/tags.ts), with a GIN index for
 *   the tag filter (`tags @> $x`).
 * - `sessions.trashed_at`: when the session was moved to the trash; null outside it. Listings
 *   leave trashed sessions out unless asked.
 * - `chunks.trashed`: set on every chunk of a trashed session, in the same transaction, and the
 *   chunks taken out of the lexical postings and BM25 statistics (chunk-stats.ts `hideChunks`), so
 *   the lexical side never finds them and the vector side filters them (index/postgres/filters.ts).
 *   The rows themselves stay, so restoring puts them back without embedding anything again.
 *   A column on the chunk rather than a join to the session keeps the search's filter on the rows
 *   the HNSW walk reads.
 *
 * Both columns have constant defaults, which PostgreSQL adds without rewriting the tables.
 */
export const SCHEMA_V4 = `
ALTER TABLE memex.sessions ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
ALTER TABLE memex.sessions ADD COLUMN trashed_at timestamptz;
CREATE INDEX sessions_tags ON memex.sessions USING gin (tags);
CREATE INDEX sessions_trashed ON memex.sessions (user_id, trashed_at) WHERE trashed_at IS NOT NULL;
ALTER TABLE memex.chunks ADD COLUMN trashed boolean NOT NULL DEFAULT false;
`;

/**
 * Trashed messages: each message's row, its chunks' rows and the summary its removal dropped, as
 * JSON of the rows themselves (`to_jsonb`, the vector and tsvector in their text forms), so
 * restoring inserts the very rows again, with their `seq` (OVERRIDING SYSTEM VALUE): the message
 * goes back to its place in the session and its rows to theirs, nothing embedded again. The
 * message itself is deleted, so every reader of the session is simply without it. Rows go with
 * their session.
 */
export const SCHEMA_V4_TRASHED_MESSAGES = `
CREATE TABLE memex.trashed_messages (
  user_id text NOT NULL,
  session_id text NOT NULL,
  message_id text NOT NULL,
  trashed_at timestamptz NOT NULL,
  message jsonb NOT NULL,
  chunks jsonb NOT NULL CHECK (jsonb_typeof(chunks) = 'array'),
  summary jsonb,
  PRIMARY KEY (user_id, session_id, message_id),
  FOREIGN KEY (user_id, session_id) REFERENCES memex.sessions (user_id, id) ON DELETE CASCADE
);
ALTER TABLE memex.trashed_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE memex.trashed_messages FORCE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON memex.trashed_messages USING (user_id = current_setting('memex.user_id', true))
  WITH CHECK (user_id = current_setting('memex.user_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON memex.trashed_messages TO memex_app;
`;
