/**
 * Migration (issue 19, fork/merge and panels): a session's links to the sessions it was forked or
 * merged from and to its forks, a panel's participants, and the persona that spoke each message.
 * Every column has a default, so rows written before read as a session that has none.
 */
export const SCHEMA_V5 = `
ALTER TABLE memex.sessions
  ADD COLUMN forked_from jsonb CHECK (forked_from IS NULL OR jsonb_typeof(forked_from) = 'object'),
  ADD COLUMN forks jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(forks) = 'array'),
  ADD COLUMN merged_from jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(merged_from) = 'array'),
  ADD COLUMN participants jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(participants) = 'array');

ALTER TABLE memex.messages
  ADD COLUMN persona_id text CHECK (persona_id IS NULL OR role = 'assistant');
`;
