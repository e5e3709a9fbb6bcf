/**
 * Migration (issue 19, archive): an archived session keeps its row in `sessions` (so it stays
 * listed, with `archived_at` set) while its messages, files and chunk rows leave the hot tables
 * for one gzip'ed payload in `session_archives` (store/postgres/archive.ts writes and reads it).
 * The summary stays in `summaries`: it is small and a listing or a context window may show it.
 */
export const SCHEMA_V6 = `
ALTER TABLE memex.sessions ADD COLUMN archived_at timestamptz;

CREATE TABLE memex.session_archives (
  user_id text NOT NULL,
  session_id text NOT NULL,
  -- The format of the payload (archive.ts ARCHIVE_FORMAT), so a later Memex can read an old one.
  format smallint NOT NULL,
  payload bytea NOT NULL,
  -- The payload's JSON size before compression: what archiving saved, for the README's figures.
  raw_bytes bigint NOT NULL CHECK (raw_bytes >= 0),
  archived_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, session_id),
  FOREIGN KEY (user_id, session_id) REFERENCES memex.sessions (user_id, id) ON DELETE CASCADE
);

ALTER TABLE memex.session_archives ENABLE ROW LEVEL SECURITY;
ALTER TABLE memex.session_archives FORCE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON memex.session_archives USING (user_id = current_setting('memex.user_id', true))
  WITH CHECK (user_id = current_setting('memex.user_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON memex.session_archives TO memex_app;
`;
