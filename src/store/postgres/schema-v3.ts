/**
 * Migration 3: import jobs (`POST /v1/imports`) in the database, so that every service instance
 * can report, follow and cancel a job whichever instance runs it, and a restart does not lose it.
 * `cancel_requested` is its own column: the running instance's saves replace `job`, never a cancel
 * asked for meanwhile.
 */
export const SCHEMA_V3 = `
CREATE TABLE memex.import_jobs (
  user_id text NOT NULL REFERENCES memex.users (user_id) ON DELETE CASCADE,
  id text NOT NULL CHECK (id ~ '^ijob_[0-9a-z]{26}$'),
  -- The job as core/schemas.ts ImportJobSchema has it (cancelRequested from the column below).
  job jsonb NOT NULL,
  cancel_requested boolean NOT NULL DEFAULT false,
  -- When the job ended (null while it runs): old ended jobs are forgotten.
  finished_at timestamptz,
  PRIMARY KEY (user_id, id)
);

ALTER TABLE memex.import_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE memex.import_jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON memex.import_jobs USING (user_id = current_setting('memex.user_id', true))
  WITH CHECK (user_id = current_setting('memex.user_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON memex.import_jobs TO memex_app;
`;
