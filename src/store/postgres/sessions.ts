import type { PoolClient } from 'pg';
import {
  MemexError,
  NewSessionSchema,
  newSessionId,
  parseId,
  parseInput,
  SessionListOptionsSchema,
  SessionMetaSchema,
  SessionLineageInputSchema,
  SessionUpdateSchema,
  TimestampInputSchema,
  type NewSession,
  type SessionSort,
  type PersonaId,
  type SessionId,
  type SessionOrigin,
  type SessionLineage,
  type SessionUpdate,
  type SessionSummary,
  type UserId,
} from '../../core/index.js';
import { readSessionCursor, sessionCursor } from '../cursor.js';
import type { ListOptions, RestoredSession, SessionPage, TagCount } from '../store.js';
import { sortValue } from '../session-order.js';
import { normalTags, patchTags, sortTagCounts } from '../tags.js';
import { notInTrash } from '../trash.js';
import { foldCase } from '../text.js';
import { deleteChunks, hideChunks, unhideChunks } from './chunk-stats.js';
import { DEFAULT_PAGE, iso, isoOrNull, type PgContext, sqlState } from './context.js';
import { requirePersona } from './personas.js';
import { requireUser, userNotFound } from './users.js';

export interface SessionRow {
  id: SessionId;
  user_id: UserId;
  title: string | null;
  title_source: 'user' | 'auto' | null;
  persona_id: PersonaId | null;
  origin: SessionOrigin;
  metadata: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
  last_message_at: Date | null;
  message_count: number;
  last_message_preview: string | null;
  activity: Date;
  forked_from: SessionLineage['forkedFrom'];
  forks: SessionLineage['forks'];
  merged_from: SessionLineage['mergedFrom'];
  participants: SessionLineage['participants'];
  archived_at: Date | null;
  tags: string[];
  trashed_at: Date | null;
}

export const SESSION_COLUMNS =
  'id, user_id, title, title_source, persona_id, origin, metadata, created_at, updated_at, last_message_at, message_count, last_message_preview, activity, forked_from, forks, merged_from, participants, archived_at, tags, trashed_at';

export function summaryOf(row: SessionRow): SessionSummary {
  return {
    id: row.id,
    userId: row.user_id,
    title: row.title,
    titleSource: row.title_source,
    personaId: row.persona_id,
    origin: row.origin,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
    lastMessageAt: isoOrNull(row.last_message_at),
    messageCount: row.message_count,
    lastMessagePreview: row.last_message_preview,
    metadata: row.metadata,
    forkedFrom: row.forked_from,
    forks: row.forks,
    mergedFrom: row.merged_from,
    participants: row.participants,
    archivedAt: isoOrNull(row.archived_at),
    tags: row.tags,
    trashedAt: isoOrNull(row.trashed_at),
  };
}

export async function createSession(ctx: PgContext, userId: string, input: NewSession = {}): Promise<SessionSummary> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  const fields = parseInput(NewSessionSchema, input, 'session');
  return ctx.as(uid, async (client) => {
    await requireUser(client, uid);
    if (fields.personaId) await requirePersona(client, uid, fields.personaId);
    const participants = [...new Set(fields.participants ?? [])];
    for (const personaId of participants) await requirePersona(client, uid, personaId);
    const created = fields.createdAt ?? new Date().toISOString();
    for (let attempt = 0; ; attempt++) {
      const id = newSessionId(new Date(created));
      await client.query('SAVEPOINT create_session');
      try {
        const { rows } = await client.query<SessionRow>(
          `INSERT INTO memex.sessions (user_id, id, title, title_key, title_source, persona_id, origin, metadata, created_at, updated_at, participants, tags)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now(), $10, $11) RETURNING ${SESSION_COLUMNS}`,
          [uid, id, fields.title ?? null, fields.title ? foldCase(fields.title) : null, fields.title ? 'user' : null, fields.personaId ?? null, fields.origin ?? { kind: 'native' }, fields.metadata ?? {}, created, JSON.stringify(participants), normalTags(fields.tags ?? [])],
        );
        return summaryOf(rows[0] as SessionRow);
      } catch (error) {
        // Two sessions made in the same second share the time part of the id; the random part rarely clashes.
        if (sqlState(error) !== '23505' || attempt >= 5) throw error;
        await client.query('ROLLBACK TO SAVEPOINT create_session');
      }
    }
  });
}

export async function getSession(ctx: PgContext, userId: string, sessionId: string): Promise<SessionSummary> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  return ctx.as(uid, async (client) => summaryOf(await requireSession(client, uid, sid, { archived: true })));
}

export async function updateSession(ctx: PgContext, userId: string, sessionId: string, patch: SessionUpdate): Promise<SessionSummary> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const changes = parseInput(SessionUpdateSchema, patch, 'session patch');
  const participants = changes.participants === undefined ? null : JSON.stringify([...new Set(changes.participants)]);
  return ctx.as(uid, async (client) => {
    const current = await requireSession(client, uid, sid, { lock: true });
    if (changes.personaId) await requirePersona(client, uid, changes.personaId);
    for (const personaId of changes.participants ?? []) await requirePersona(client, uid, personaId);
    const tags = changes.addTags || changes.removeTags ? patchTags(current.tags, changes.addTags, changes.removeTags) : null;
    const { rows } = await client.query<SessionRow>(
      `UPDATE memex.sessions SET
         title = CASE WHEN $3::boolean THEN $4 ELSE title END,
         title_key = CASE WHEN $3::boolean THEN $5 ELSE title_key END,
         title_source = CASE WHEN $3::boolean THEN 'user' ELSE title_source END,
         persona_id = CASE WHEN $6::boolean THEN $7 ELSE persona_id END,
         metadata = coalesce($8, metadata),
         participants = coalesce($9::jsonb, participants),
         forks = CASE WHEN $10::text IS NULL OR forks ? $10::text THEN forks ELSE forks || to_jsonb($10::text) END,
         tags = coalesce($11::text[], tags),
         updated_at = now()
       WHERE user_id = $1 AND id = $2 RETURNING ${SESSION_COLUMNS}`,
      [
        uid,
        sid,
        changes.title !== undefined,
        changes.title ?? null,
        changes.title !== undefined ? foldCase(changes.title) : null,
        changes.personaId !== undefined,
        changes.personaId ?? null,
        changes.metadata ?? null,
        participants,
        changes.addFork ?? null,
        tags,
      ],
    );
    return summaryOf(rows[0] as SessionRow);
  });
}

/** Deletes the session; its messages, files, summary and jobs go with it (foreign keys cascade). */
export async function deleteSession(ctx: PgContext, userId: string, sessionId: string): Promise<void> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  await ctx.as(uid, async (client) => {
    // The session row first, as every writer to a session locks it before the user's lexical
    // statistics (chunk-stats.ts); its chunks would go with it anyway, but deleted here they leave
    // the statistics too.
    const { rowCount } = await client.query('SELECT 1 FROM memex.sessions WHERE user_id = $1 AND id = $2 FOR UPDATE', [uid, sid]);
    if (!rowCount) await sessionNotFound(client, uid, sid);
    await deleteChunks(client, uid, 'c.session_id = $2', [sid]);
    await client.query('DELETE FROM memex.sessions WHERE user_id = $1 AND id = $2', [uid, sid]);
  });
}

/** Each sort's column, as the flat files order it (store/session-order.ts); the cursor's value is cast back to its type. */
const SORT_SQL: Record<SessionSort, { expr: string; cast: string }> = {
  activity: { expr: 'activity', cast: '::timestamptz' },
  created: { expr: 'created_at', cast: '::timestamptz' },
  // Folded titles compare by code point (the "C" collation), as the flat files compare them.
  title: { expr: "coalesce(title_key, '') COLLATE \"C\"", cast: '::text COLLATE "C"' },
  messages: { expr: 'message_count', cast: '::int' },
};

export async function listSessions(ctx: PgContext, userId: string, options: ListOptions = {}): Promise<SessionPage> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  const parsed = parseInput(SessionListOptionsSchema, options, 'list options');
  const { limit = DEFAULT_PAGE, offset, cursor, title, origin, sort = 'activity', order = 'desc', tags, personaId, after: activeAfter, before: activeBefore, trashed = 'exclude', archived = 'include' } = parsed;
  if (offset !== undefined && cursor !== undefined) throw new MemexError('MEMEX_INVALID_INPUT', 'pass either offset or cursor, not both');
  const after = cursor !== undefined ? readSessionCursor(cursor, sort, order) : null;
  const params: unknown[] = [uid];
  const add = (value: unknown): string => `$${params.push(value)}`;
  const parts = ['user_id = $1'];
  if (title !== undefined) parts.push(`strpos(title_key, ${add(foldCase(title))}) > 0`);
  if (origin !== undefined && origin !== 'all') parts.push(`origin ->> 'kind' = ${add(origin)}`);
  if (tags) parts.push(`tags @> ${add(tags)}::text[]`);
  if (personaId !== undefined) parts.push(`persona_id = ${add(personaId)}`);
  if (activeAfter !== undefined) parts.push(`activity >= ${add(activeAfter)}::timestamptz`);
  if (activeBefore !== undefined) parts.push(`activity < ${add(activeBefore)}::timestamptz`);
  if (trashed === 'exclude') parts.push('trashed_at IS NULL');
  if (trashed === 'only') parts.push('trashed_at IS NOT NULL');
  if (archived === 'exclude') parts.push('archived_at IS NULL');
  if (archived === 'only') parts.push('archived_at IS NOT NULL');
  const filter = parts.join(' AND ');
  const { expr, cast } = SORT_SQL[sort];
  const direction = order === 'asc' ? 'ASC' : 'DESC';
  return ctx.as(uid, async (client) => {
    await requireUser(client, uid);
    const total = Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM memex.sessions WHERE ${filter}`, params)).rows[0]?.n ?? 0);
    let start = offset ?? 0;
    let rows: SessionRow[];
    if (after) {
      // Keyset: the sessions after the cursor's place in the order, so sessions created since the
      // last page neither shift this one nor repeat.
      const position = [...params, after.value, after.id];
      const at = `(${expr}, id) ${order === 'asc' ? '<=' : '>='} ($${params.length + 1}${cast}, $${params.length + 2})`;
      const beyond = `(${expr}, id) ${order === 'asc' ? '>' : '<'} ($${params.length + 1}${cast}, $${params.length + 2})`;
      start = Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM memex.sessions WHERE ${filter} AND ${at}`, position)).rows[0]?.n ?? 0);
      rows = (
        await client.query<SessionRow>(`SELECT ${SESSION_COLUMNS} FROM memex.sessions WHERE ${filter} AND ${beyond} ORDER BY ${expr} ${direction}, id ${direction} LIMIT $${position.length + 1}`, [
          ...position,
          limit,
        ])
      ).rows;
    } else {
      rows = (
        await client.query<SessionRow>(
          `SELECT ${SESSION_COLUMNS} FROM memex.sessions WHERE ${filter} ORDER BY ${expr} ${direction}, id ${direction} LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
          [...params, limit, start],
        )
      ).rows;
    }
    const last = rows[rows.length - 1];
    return {
      sessions: rows.map(summaryOf),
      total,
      offset: start,
      limit,
      nextCursor: last && start + rows.length < total ? sessionCursor({ sort, order, value: sortValue(summaryOf(last), sort), id: last.id }) : null,
      unreadable: [],
    };
  });
}

export async function trashSession(ctx: PgContext, userId: string, sessionId: string, options: { at?: string } = {}): Promise<SessionSummary> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const at = options.at === undefined ? new Date().toISOString() : parseInput(TimestampInputSchema, options.at, 'trash time');
  return ctx.as(uid, async (client) => {
    // The session row first: writers to a session lock it before the user's lexical statistics.
    // An archived session goes to the trash as it is (its chunks are in the archive).
    const row = await requireSession(client, uid, sid, { lock: true, archived: true });
    if (row.trashed_at !== null) return summaryOf(row);
    const { rows } = await client.query<SessionRow>(`UPDATE memex.sessions SET trashed_at = $3 WHERE user_id = $1 AND id = $2 RETURNING ${SESSION_COLUMNS}`, [uid, sid, at]);
    await hideChunks(client, uid, 'c.session_id = $2', [sid]);
    return summaryOf(rows[0] as SessionRow);
  });
}

export async function untrashSession(ctx: PgContext, userId: string, sessionId: string): Promise<SessionSummary> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  return ctx.as(uid, async (client) => {
    const row = await requireSession(client, uid, sid, { lock: true, archived: true });
    if (row.trashed_at === null) throw notInTrash(sid);
    const { rows } = await client.query<SessionRow>(`UPDATE memex.sessions SET trashed_at = NULL WHERE user_id = $1 AND id = $2 RETURNING ${SESSION_COLUMNS}`, [uid, sid]);
    await unhideChunks(client, uid, 'c.session_id = $2', [sid]);
    return summaryOf(rows[0] as SessionRow);
  });
}

export async function listTags(ctx: PgContext, userId: string): Promise<TagCount[]> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  return ctx.as(uid, async (client) => {
    await requireUser(client, uid);
    const { rows } = await client.query<{ tag: string; n: number }>(
      'SELECT t.tag, count(*)::int AS n FROM memex.sessions s CROSS JOIN LATERAL unnest(s.tags) AS t(tag) WHERE s.user_id = $1 AND s.trashed_at IS NULL GROUP BY t.tag',
      [uid],
    );
    return sortTagCounts(new Map(rows.map((row) => [row.tag, row.n])));
  });
}

/**
 * The session's row (locked for update with `lock`, so writes to one session take turns);
 * MEMEX_SESSION_NOT_FOUND or MEMEX_USER_NOT_FOUND. An archived session's content is in its
 * archive, so it is MEMEX_SESSION_ARCHIVED unless the caller only needs the row (`archived`).
 */
export async function requireSession(client: PoolClient, userId: UserId, sessionId: string, options: { lock?: boolean; archived?: boolean } = {}): Promise<SessionRow> {
  const { rows } = await client.query<SessionRow>(`SELECT ${SESSION_COLUMNS} FROM memex.sessions WHERE user_id = $1 AND id = $2${options.lock ? ' FOR UPDATE' : ''}`, [userId, sessionId]);
  if (!rows[0]) return sessionNotFound(client, userId, sessionId);
  if (rows[0].archived_at !== null && !options.archived) throw sessionArchived(sessionId as SessionId);
  return rows[0];
}

export function sessionArchived(sessionId: SessionId): MemexError {
  return new MemexError('MEMEX_SESSION_ARCHIVED', `session ${sessionId} is archived; unarchive it to read or change its messages`, { details: { sessionId } });
}

export async function sessionNotFound(client: PoolClient, userId: UserId, sessionId: string): Promise<never> {
  const user = await client.query('SELECT 1 FROM memex.users WHERE user_id = $1', [userId]);
  if (!user.rowCount) throw userNotFound(userId);
  throw new MemexError('MEMEX_SESSION_NOT_FOUND', `session ${sessionId} does not exist for user ${userId}`, { details: { sessionId } });
}

// ---- restoring a copy (memex migrate): the session's own fields as given, id and times included

const RestoredSessionSchema = SessionMetaSchema.pick({ id: true, title: true, titleSource: true, personaId: true, origin: true, createdAt: true, updatedAt: true, metadata: true, tags: true, trashedAt: true }).extend(
  SessionLineageInputSchema.shape,
);

/** Creates the session with its id, or sets these fields of an existing one; counts and the last message follow its messages. */
export async function restoreSession(ctx: PgContext, userId: string, session: RestoredSession): Promise<SessionSummary> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  const fields = parseInput(RestoredSessionSchema, session, 'session');
  return ctx.as(uid, async (client) => {
    await requireUser(client, uid);
    if (fields.personaId) await requirePersona(client, uid, fields.personaId);
    const { rows } = await client.query<SessionRow>(
      `INSERT INTO memex.sessions (user_id, id, title, title_key, title_source, persona_id, origin, metadata, created_at, updated_at, forked_from, forks, merged_from, participants, tags, trashed_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, coalesce($12::jsonb, '[]'), coalesce($13::jsonb, '[]'), coalesce($14::jsonb, '[]'), $16, $17)
       ON CONFLICT (user_id, id) DO UPDATE SET title = EXCLUDED.title, title_key = EXCLUDED.title_key, title_source = EXCLUDED.title_source, persona_id = EXCLUDED.persona_id,
         origin = EXCLUDED.origin, metadata = EXCLUDED.metadata, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, tags = EXCLUDED.tags, trashed_at = EXCLUDED.trashed_at,
         -- A restore given no lineage keeps the session's own.
         forked_from = CASE WHEN $15::boolean THEN EXCLUDED.forked_from ELSE memex.sessions.forked_from END,
         forks = coalesce($12::jsonb, memex.sessions.forks), merged_from = coalesce($13::jsonb, memex.sessions.merged_from),
         participants = coalesce($14::jsonb, memex.sessions.participants)
       RETURNING ${SESSION_COLUMNS}`,
      [
        uid, fields.id, fields.title, fields.title === null ? null : foldCase(fields.title), fields.titleSource, fields.personaId, fields.origin, fields.metadata, fields.createdAt, fields.updatedAt,
        fields.forkedFrom ?? null, jsonOrNull(fields.forks), jsonOrNull(fields.mergedFrom), jsonOrNull(fields.participants), fields.forkedFrom !== undefined, normalTags(fields.tags), fields.trashedAt,
      ],
    );
    const row = rows[0] as SessionRow;
    // The chunks follow the session's trash flag (a copy of a trashed session arrives trashed).
    if (row.trashed_at !== null) await hideChunks(client, uid, 'c.session_id = $2', [row.id]);
    else await unhideChunks(client, uid, 'c.session_id = $2', [row.id]);
    return summaryOf(row);
  });
}

function jsonOrNull(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}
