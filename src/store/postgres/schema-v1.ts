/**
 * Migration 1: the whole Memex schema on PostgreSQL.
 *
 * Everything lives in the `memex` schema, so Memex can share a database with other applications and
 * a test (or an operator) can drop it in one statement. Conventions that the rest of the backend
 * relies on:
 * - Every per-user table carries `user_id`, and every primary key, unique key and foreign key starts
 *   with it. That is what Citus needs to distribute the tables by user and co-locate them
 *   (`create_distributed_table('memex.sessions', 'user_id', colocate_with => 'memex.users')`), and
 *   what keeps one user's rows together on a single server today.
 * - Row-level security is enabled and forced on every per-user table. The policies compare `user_id`
 *   with the transaction's `memex.user_id` setting, so a query that forgot to set it sees nothing.
 *   The service runs its queries as `memex_app`, a role that owns nothing and cannot bypass RLS.
 * - The two tables without `user_id` (`memex_schema` and `model`) describe the database itself;
 *   under Citus they are reference tables.
 * - The embedding column is an untyped `vector`: the dimension is a fact of the deployment (the
 *   model recorded at first use), not of the code, so it cannot be written into a versioned
 *   migration. `recordModel` adds the dimension check and the HNSW index for that dimension when
 *   the model is recorded (see model.ts).
 */
export const SCHEMA_V1 = String.raw`
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'memex_app') THEN
    CREATE ROLE memex_app NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
  END IF;
  -- The connecting role must be a member to SET ROLE to it (superusers may anyway).
  IF NOT pg_has_role(current_user, 'memex_app', 'MEMBER') THEN
    EXECUTE format('GRANT memex_app TO %I', current_user);
  END IF;
END
$$;

GRANT USAGE ON SCHEMA memex TO memex_app;

-- The data-dir manifest: which model made the vectors. One row per database (id is always 1).
CREATE TABLE memex.model (
  id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
  model text NOT NULL CHECK (length(model) > 0),
  dimension integer NOT NULL CHECK (dimension > 0 AND dimension <= 16000),
  recorded_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON memex.model TO memex_app;

-- What a session listing shows of the last message: whitespace folded, cut at a word near 160
-- characters, like the flat-file store's preview.
CREATE FUNCTION memex.one_line(body text, max integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
  SELECT CASE
    WHEN length(flat) <= max THEN flat
    WHEN strpos(reverse(left(flat, max)), ' ') > 0 AND max - strpos(reverse(left(flat, max)), ' ') > max * 0.6
      THEN rtrim(left(flat, max - strpos(reverse(left(flat, max)), ' '))) || '…'
    ELSE rtrim(left(flat, max)) || '…'
  END
  FROM (SELECT btrim(regexp_replace(body, '\s+', ' ', 'g')) AS flat) AS f
$fn$;

CREATE TABLE memex.users (
  user_id text PRIMARY KEY CHECK (length(user_id) BETWEEN 1 AND 128),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE memex.personas (
  user_id text NOT NULL REFERENCES memex.users (user_id) ON DELETE CASCADE,
  id text NOT NULL,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  instructions text NOT NULL,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, id)
);
-- Names are unique per user ignoring case and surrounding space (samePersonaName).
CREATE UNIQUE INDEX personas_name_key ON memex.personas (user_id, lower(btrim(normalize(name, NFC))));

CREATE TABLE memex.sessions (
  user_id text NOT NULL REFERENCES memex.users (user_id) ON DELETE CASCADE,
  id text NOT NULL,
  title text,
  -- The title lowercased without accents (written by the store with the title): what a title
  -- filter matches, the same folding as the flat files' listing.
  title_key text,
  title_source text CHECK (title_source IN ('user', 'auto')),
  persona_id text,
  -- {"kind":"native"} or {"kind":"imported","source":...,"conversationId":...}
  origin jsonb NOT NULL DEFAULT '{"kind":"native"}'::jsonb CHECK (origin ->> 'kind' IN ('native', 'imported')),
  is_active boolean NOT NULL DEFAULT true,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  -- Kept by the messages trigger, never written by the application.
  last_message_at timestamptz,
  message_count integer NOT NULL DEFAULT 0 CHECK (message_count >= 0),
  last_message_preview text,
  -- A listing's order: the last message's time, else the creation time.
  activity timestamptz GENERATED ALWAYS AS (coalesce(last_message_at, created_at)) STORED,
  -- No foreign key to personas: ON DELETE SET NULL of one column of a composite key needs
  -- PostgreSQL 15, so deleting a persona clears it from its sessions in the store, as the flat files do.
  PRIMARY KEY (user_id, id)
);
CREATE INDEX sessions_recent ON memex.sessions (user_id, activity DESC, id DESC);
-- A re-import of the same conversation finds its session instead of making another.
CREATE UNIQUE INDEX sessions_imported_key ON memex.sessions (user_id, (origin ->> 'source'), (origin ->> 'conversationId'))
  WHERE origin ->> 'kind' = 'imported';

CREATE TABLE memex.messages (
  user_id text NOT NULL,
  session_id text NOT NULL,
  id text NOT NULL,
  -- Append order within the database: what "the session's messages in order" means.
  seq bigint GENERATED ALWAYS AS IDENTITY,
  v smallint NOT NULL DEFAULT 1 CHECK (v IN (1, 2)),
  role text NOT NULL CHECK (role IN ('user', 'assistant', 'system', 'tool')),
  content text NOT NULL,
  parts jsonb CHECK (parts IS NULL OR jsonb_typeof(parts) = 'array'),
  name text CHECK (name IS NULL OR length(name) BETWEEN 1 AND 256),
  tool_calls jsonb CHECK (tool_calls IS NULL OR (role = 'assistant' AND jsonb_typeof(tool_calls) = 'array')),
  tool_call_id text CHECK (tool_call_id IS NULL OR role = 'tool'),
  tool_name text CHECK (tool_name IS NULL OR role = 'tool'),
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
  attachments jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(attachments) = 'array'),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, session_id, id),
  FOREIGN KEY (user_id, session_id) REFERENCES memex.sessions (user_id, id) ON DELETE CASCADE
);
CREATE INDEX messages_in_order ON memex.messages (user_id, session_id, seq);

-- The session's count, last time and preview follow its messages inside the same transaction, so
-- no writer can forget them and no reader sees a count that disagrees with the rows.
CREATE FUNCTION memex.session_tail_refresh(owner text, session text) RETURNS void
LANGUAGE sql AS $fn$
  UPDATE memex.sessions s
     SET message_count = (SELECT count(*) FROM memex.messages m WHERE m.user_id = owner AND m.session_id = session),
         last_message_at = last.created_at,
         last_message_preview = memex.one_line(last.content, 160)
    FROM (SELECT NULL::int AS pad) AS p
    LEFT JOIN LATERAL (
      SELECT m.created_at, m.content FROM memex.messages m
       WHERE m.user_id = owner AND m.session_id = session
       ORDER BY m.seq DESC LIMIT 1
    ) AS last ON true
   WHERE s.user_id = owner AND s.id = session
$fn$;

-- Statement triggers with transition tables: a batch append updates each session once, and deleting
-- a session of n messages recounts it once instead of n times.
CREATE FUNCTION memex.messages_added() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  UPDATE memex.sessions s
     SET message_count = s.message_count + a.n,
         last_message_at = a.last_at,
         last_message_preview = memex.one_line(a.last_content, 160),
         updated_at = now()
    FROM (SELECT DISTINCT ON (user_id, session_id) user_id, session_id,
                 count(*) OVER (PARTITION BY user_id, session_id) AS n, created_at AS last_at, content AS last_content
            FROM added
           ORDER BY user_id, session_id, seq DESC) AS a
   WHERE s.user_id = a.user_id AND s.id = a.session_id;
  RETURN NULL;
END
$fn$;
CREATE TRIGGER messages_added AFTER INSERT ON memex.messages
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION memex.messages_added();

CREATE FUNCTION memex.messages_changed() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
  touched record;
BEGIN
  FOR touched IN SELECT DISTINCT user_id, session_id FROM changed LOOP
    PERFORM memex.session_tail_refresh(touched.user_id, touched.session_id);
  END LOOP;
  RETURN NULL;
END
$fn$;
CREATE TRIGGER messages_deleted AFTER DELETE ON memex.messages
  REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION memex.messages_changed();
CREATE TRIGGER messages_updated AFTER UPDATE ON memex.messages
  REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION memex.messages_changed();

-- The counts above follow sessions by key, so a message keeps its session and id for life.
CREATE FUNCTION memex.messages_stay() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  RAISE EXCEPTION 'a message cannot move to another session or change its id' USING ERRCODE = 'check_violation';
END
$fn$;
CREATE TRIGGER messages_stay BEFORE UPDATE OF user_id, session_id, id ON memex.messages
  FOR EACH ROW WHEN (NEW.user_id <> OLD.user_id OR NEW.session_id <> OLD.session_id OR NEW.id <> OLD.id)
  EXECUTE FUNCTION memex.messages_stay();

CREATE TABLE memex.files (
  user_id text NOT NULL,
  session_id text NOT NULL,
  -- The sha256 of the bytes, as in the flat files: one copy per session and content.
  id text NOT NULL CHECK (id ~ '^[0-9a-f]{64}$'),
  name text NOT NULL CHECK (length(name) <= 255),
  mime_type text NOT NULL,
  ext text NOT NULL CHECK (ext ~ '^[a-z0-9]{1,10}$'),
  size bigint NOT NULL CHECK (size >= 0),
  -- In the database, so every service instance sees every file.
  bytes bytea NOT NULL,
  content jsonb,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, session_id, id),
  FOREIGN KEY (user_id, session_id) REFERENCES memex.sessions (user_id, id) ON DELETE CASCADE,
  CHECK (octet_length(bytes) = size)
);

-- What ingest derives from a file and keeps (its extracted text, a thumbnail): files/<sha256>.<name>.
CREATE TABLE memex.file_artifacts (
  user_id text NOT NULL,
  session_id text NOT NULL,
  file_id text NOT NULL,
  name text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
  bytes bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, session_id, file_id, name),
  FOREIGN KEY (user_id, session_id, file_id) REFERENCES memex.files (user_id, session_id, id) ON DELETE CASCADE
);

CREATE TABLE memex.notes (
  user_id text NOT NULL REFERENCES memex.users (user_id) ON DELETE CASCADE,
  id text NOT NULL,
  -- Notes list oldest first, in the order they were added.
  seq bigint GENERATED ALWAYS AS IDENTITY,
  kind text NOT NULL CHECK (kind IN ('fact', 'preference', 'instruction', 'note')),
  text text NOT NULL CHECK (length(text) > 0),
  pinned boolean NOT NULL DEFAULT false,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, id)
);

CREATE TABLE memex.summaries (
  user_id text NOT NULL,
  session_id text NOT NULL,
  text text NOT NULL,
  covers_through_message_id text,
  covered_messages integer NOT NULL CHECK (covered_messages >= 0),
  method text NOT NULL CHECK (method IN ('extractive', 'model')),
  model text,
  tokens integer NOT NULL CHECK (tokens >= 0),
  encoding text,
  -- Extractive summaries: the kept sentences and the centroid they were ranked against.
  items jsonb CHECK (items IS NULL OR jsonb_typeof(items) = 'array'),
  centroid jsonb,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, session_id),
  FOREIGN KEY (user_id, session_id) REFERENCES memex.sessions (user_id, id) ON DELETE CASCADE
);

CREATE TABLE memex.chunks (
  user_id text NOT NULL,
  session_id text NOT NULL,
  -- <messageId or fileId>[:<page>]:<index>, stable across re-embedding.
  id text NOT NULL,
  -- Row order within the session (the flat files' row number is the rank in this order).
  seq bigint GENERATED ALWAYS AS IDENTITY,
  source_kind text NOT NULL CHECK (source_kind IN ('message', 'file')),
  message_id text,
  file_id text,
  page integer CHECK (page IS NULL OR page > 0),
  -- The rest of the provenance (role, created_at, headings) as the flat files' ChunkSource has it.
  source jsonb NOT NULL CHECK (source ->> 'kind' = source_kind),
  part_index integer NOT NULL CHECK (part_index >= 0),
  part_count integer NOT NULL CHECK (part_count > part_index),
  span_start integer NOT NULL CHECK (span_start >= 0),
  span_end integer NOT NULL CHECK (span_end >= span_start),
  text text NOT NULL,
  tokens integer NOT NULL CHECK (tokens >= 0),
  model text NOT NULL,
  -- Untyped on purpose: model.ts adds the dimension check and the HNSW index for it.
  embedding vector NOT NULL,
  -- The lexical side of hybrid search, written by the store from the analysis of src/core/terms.ts
  -- (the flat files' BM25 terms: split, lowercased, stopwords dropped, stemmed as memex.lexical
  -- records), so both backends rank by the same BM25: the distinct terms (for the GIN index), each
  -- term's count, and the length BM25 normalises by (MiniSearch's: distinct raw tokens).
  lexemes tsvector NOT NULL,
  term_counts jsonb NOT NULL,
  term_length integer NOT NULL CHECK (term_length >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, session_id, id),
  FOREIGN KEY (user_id, session_id) REFERENCES memex.sessions (user_id, id) ON DELETE CASCADE,
  CHECK (source_kind <> 'message' OR message_id IS NOT NULL),
  CHECK (source_kind <> 'file' OR file_id IS NOT NULL)
);
CREATE INDEX chunks_lexemes ON memex.chunks USING gin (lexemes);
CREATE INDEX chunks_in_order ON memex.chunks (user_id, session_id, seq);
CREATE INDEX chunks_by_message ON memex.chunks (user_id, session_id, message_id) WHERE message_id IS NOT NULL;
CREATE INDEX chunks_by_file ON memex.chunks (user_id, session_id, file_id) WHERE file_id IS NOT NULL;

CREATE TABLE memex.api_keys (
  user_id text NOT NULL REFERENCES memex.users (user_id) ON DELETE CASCADE,
  id text NOT NULL CHECK (id ~ '^[0-9a-z]{12}$'),
  name text CHECK (name IS NULL OR length(name) <= 200),
  -- Hex SHA-256 of the secret part; the secret itself is never stored.
  hash text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
  admin boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  PRIMARY KEY (user_id, id),
  UNIQUE (user_id, hash)
);

CREATE TABLE memex.ingest_jobs (
  user_id text NOT NULL,
  session_id text NOT NULL,
  id text NOT NULL,
  file_id text NOT NULL,
  name text NOT NULL,
  state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
  created boolean NOT NULL,
  -- Which service instance runs it, and when it last said so: a worker claims queued jobs, or
  -- running ones whose heartbeat is stale, with FOR UPDATE SKIP LOCKED.
  claimed_by text,
  heartbeat_at timestamptz,
  attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  progress jsonb,
  result jsonb,
  error jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  PRIMARY KEY (user_id, id),
  FOREIGN KEY (user_id, session_id) REFERENCES memex.sessions (user_id, id) ON DELETE CASCADE,
  CHECK ((state IN ('done', 'failed', 'cancelled')) = (finished_at IS NOT NULL))
);
CREATE INDEX ingest_jobs_claimable ON memex.ingest_jobs (state, heartbeat_at) WHERE state IN ('queued', 'running');

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['users', 'personas', 'sessions', 'messages', 'files', 'file_artifacts', 'notes',
                           'summaries', 'chunks', 'api_keys', 'ingest_jobs'] LOOP
    EXECUTE format('ALTER TABLE memex.%I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE memex.%I FORCE ROW LEVEL SECURITY', t);
    -- current_setting(..., true) is NULL when unset, and NULL = user_id is never true: no user, no rows.
    EXECUTE format(
      'CREATE POLICY own_rows ON memex.%I USING (user_id = current_setting(''memex.user_id'', true)) '
      'WITH CHECK (user_id = current_setting(''memex.user_id'', true))', t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON memex.%I TO memex_app', t);
  END LOOP;
END
$$;

-- Listing every user (the admin routes, reindex and doctor over all users, migration) is the one
-- read that crosses users. It runs as memex_admin, a role that owns nothing, whose only cross-user
-- right is to read profiles; everything under a user is still read as that user.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'memex_admin') THEN
    CREATE ROLE memex_admin NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
  END IF;
  IF NOT pg_has_role(current_user, 'memex_admin', 'MEMBER') THEN
    EXECUTE format('GRANT memex_admin TO %I', current_user);
  END IF;
END
$$;
GRANT USAGE ON SCHEMA memex TO memex_admin;
GRANT SELECT ON memex.users TO memex_admin;
GRANT SELECT ON memex.model TO memex_admin;
CREATE POLICY admin_lists_users ON memex.users FOR SELECT TO memex_admin USING (true);

-- ===== Many instances: API keys and ingest jobs shared by every service instance (issue 16, item 5) =====
--
-- Three lookups cross users, and each gets the narrowest path that does its job; RLS stays forced
-- and no role bypasses it:
-- 1. Checking an API key knows only the token. memex_app may also see the one key whose secret it
--    holds: the service puts the SHA-256 of the presented secret in 'memex.key_hash', and the
--    policy below shows rows with exactly that hash. Without the secret the hash is unknown (it is
--    never returned to anyone), so this reveals nothing a caller did not already have.
-- 2. A worker takes the next queued job of any user. 'memex_worker' sees and updates only unfinished
--    jobs, and only the columns a claim and a heartbeat need (not a job's result or error); it
--    cannot insert or delete. The ingest itself, and finishing the job, run as the job's user.
-- 3. The operator's key commands ('memex keys list' without a user, 'keys revoke <id>', "is there any
--    live key") see every user's keys. memex_admin (above: it lists profiles) may also read every
--    key's metadata, never its hash, and may set only 'revoked_at'.
-- memex_worker is NOLOGIN and granted to the connecting role, like memex_app.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'memex_worker') THEN
    CREATE ROLE memex_worker NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
  END IF;
  IF NOT pg_has_role(current_user, 'memex_worker', 'MEMBER') THEN
    EXECUTE format('GRANT memex_worker TO %I', current_user);
  END IF;
END
$$;
GRANT USAGE ON SCHEMA memex TO memex_worker;

-- Keys are made without the user's profile ('memex keys create --user' before the user's first
-- request, which creates it), and a revoked key is kept as a record after its user is deleted, as
-- in the flat files' api_keys.json: so no foreign key to users.
ALTER TABLE memex.api_keys DROP CONSTRAINT api_keys_user_id_fkey;
-- Verification looks a key up by its hash alone. (Under Citus this lookup visits every shard;
-- keys are few and the service caches a verified key for under a second.)
CREATE INDEX api_keys_by_hash ON memex.api_keys (hash);
CREATE POLICY key_by_secret ON memex.api_keys FOR SELECT TO memex_app
  USING (hash = current_setting('memex.key_hash', true));
GRANT SELECT (user_id, id, name, admin, created_at, revoked_at), UPDATE (revoked_at) ON memex.api_keys TO memex_admin;
CREATE POLICY admin_reads_keys ON memex.api_keys FOR SELECT TO memex_admin USING (true);
CREATE POLICY admin_revokes_keys ON memex.api_keys FOR UPDATE TO memex_admin USING (true) WITH CHECK (revoked_at IS NOT NULL);

-- An encrypted PDF's password stays in the memory of the instance that took the upload: that
-- instance holds such a job (claimed_by, kept fresh by its heartbeat) until it runs it, and another
-- instance takes it over only once the holder is gone, to fail it with MEMEX_JOB_PASSWORD_LOST.
ALTER TABLE memex.ingest_jobs ADD COLUMN needs_password boolean NOT NULL DEFAULT false;
GRANT SELECT (user_id, id, session_id, file_id, name, created, needs_password, state, claimed_by, heartbeat_at, attempts, created_at),
      UPDATE (state, claimed_by, heartbeat_at, attempts, progress) ON memex.ingest_jobs TO memex_worker;
CREATE POLICY worker_sees_unfinished ON memex.ingest_jobs FOR SELECT TO memex_worker
  USING (state IN ('queued', 'running'));
CREATE POLICY worker_claims_unfinished ON memex.ingest_jobs FOR UPDATE TO memex_worker
  USING (state IN ('queued', 'running')) WITH CHECK (state IN ('queued', 'running'));

-- Lexical analysis (BM25 on PostgreSQL). The analysis the chunks' terms were written with, recorded
-- with the first chunks: the store writes and the search parses queries with the recorded one, so
-- terms always meet terms made the same way, whatever a later config says.
CREATE TABLE memex.lexical (
  id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
  stopwords boolean NOT NULL,
  stemming boolean NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON memex.lexical TO memex_app;
GRANT SELECT ON memex.lexical TO memex_admin;
`;
