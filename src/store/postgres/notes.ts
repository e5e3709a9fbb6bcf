import {
  FORMAT_VERSION,
  MemexError,
  NewNoteSchema,
  newNoteId,
  NotePatchSchema,
  NoteSchema,
  parseId,
  parseInput,
  SummarySchema,
  type MessageId,
  type NewNote,
  type NoteId,
  type SessionId,
  type Note,
  type NotePatch,
  type Summary,
} from '../../core/index.js';
import { iso, type PgContext } from './context.js';
import { requireSession } from './sessions.js';
import { requireUser } from './users.js';

interface NoteRow {
  id: NoteId;
  kind: Note['kind'];
  text: string;
  pinned: boolean;
  metadata: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

const NOTE_COLUMNS = 'id, kind, text, pinned, metadata, created_at, updated_at';

function noteOf(row: NoteRow): Note {
  return { id: row.id, kind: row.kind, text: row.text, pinned: row.pinned, createdAt: iso(row.created_at), updatedAt: iso(row.updated_at), metadata: row.metadata };
}

export async function listNotes(ctx: PgContext, userId: string): Promise<Note[]> {
  const uid = parseId('user', userId);
  return ctx.as(uid, async (client) => {
    await requireUser(client, uid);
    return (await client.query<NoteRow>(`SELECT ${NOTE_COLUMNS} FROM memex.notes WHERE user_id = $1 ORDER BY seq`, [uid])).rows.map(noteOf);
  });
}

export async function addNote(ctx: PgContext, userId: string, input: NewNote): Promise<Note> {
  const uid = parseId('user', userId);
  const fields = parseInput(NewNoteSchema, input, 'note');
  const id = fields.id ?? newNoteId();
  return ctx.as(uid, async (client) => {
    await requireUser(client, uid);
    const { rows } = await client.query<NoteRow>(
      `INSERT INTO memex.notes (user_id, id, kind, text, pinned, metadata) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, id) DO NOTHING RETURNING ${NOTE_COLUMNS}`,
      [uid, id, fields.kind, fields.text, fields.pinned, fields.metadata ?? {}],
    );
    if (!rows[0]) throw new MemexError('MEMEX_NOTE_EXISTS', `note ${id} already exists`, { details: { noteId: id } });
    return noteOf(rows[0]);
  });
}

export async function updateNote(ctx: PgContext, userId: string, noteId: string, patch: NotePatch): Promise<Note> {
  const uid = parseId('user', userId);
  const nid = parseId('note', noteId);
  const changes = parseInput(NotePatchSchema, patch, 'note patch');
  return ctx.as(uid, async (client) => {
    const { rows } = await client.query<NoteRow>(
      `UPDATE memex.notes SET text = coalesce($3, text), kind = coalesce($4, kind), pinned = coalesce($5, pinned), metadata = coalesce($6, metadata), updated_at = now()
       WHERE user_id = $1 AND id = $2 RETURNING ${NOTE_COLUMNS}`,
      [uid, nid, changes.text ?? null, changes.kind ?? null, changes.pinned ?? null, changes.metadata ?? null],
    );
    if (!rows[0]) {
      await requireUser(client, uid);
      throw noteNotFound(nid);
    }
    return noteOf(rows[0]);
  });
}

export async function deleteNote(ctx: PgContext, userId: string, noteId: string): Promise<void> {
  const uid = parseId('user', userId);
  const nid = parseId('note', noteId);
  await ctx.as(uid, async (client) => {
    const { rowCount } = await client.query('DELETE FROM memex.notes WHERE user_id = $1 AND id = $2', [uid, nid]);
    if (!rowCount) {
      await requireUser(client, uid);
      throw noteNotFound(nid);
    }
  });
}

function noteNotFound(noteId: string): MemexError {
  return new MemexError('MEMEX_NOTE_NOT_FOUND', `note ${noteId} does not exist`, { details: { noteId } });
}

export interface SummaryRow {
  session_id: SessionId;
  text: string;
  covers_through_message_id: MessageId | null;
  covered_messages: number;
  method: Summary['method'];
  model: string | null;
  tokens: number;
  encoding: string | null;
  items: Summary['items'] | null;
  centroid: Summary['centroid'] | null;
  updated_at: Date;
}

export async function getSummary(ctx: PgContext, userId: string, sessionId: string): Promise<Summary | null> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  return ctx.as(uid, async (client) => {
    await requireSession(client, uid, sid);
    const row = (await client.query<SummaryRow>('SELECT * FROM memex.summaries WHERE user_id = $1 AND session_id = $2', [uid, sid])).rows[0];
    return row ? summaryOfRow(row) : null;
  });
}

export function summaryOfRow(row: SummaryRow): Summary {
  return {
    v: FORMAT_VERSION,
    sessionId: row.session_id,
    text: row.text,
    coversThroughMessageId: row.covers_through_message_id,
    coveredMessages: row.covered_messages,
    method: row.method,
    ...(row.model !== null ? { model: row.model } : {}),
    tokens: row.tokens,
    ...(row.encoding !== null ? { encoding: row.encoding } : {}),
    updatedAt: iso(row.updated_at),
    ...(row.items !== null ? { items: row.items } : {}),
    ...(row.centroid !== null ? { centroid: row.centroid } : {}),
  };
}

export async function setSummary(ctx: PgContext, userId: string, sessionId: string, summary: Summary | null): Promise<void> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const record = summary === null ? null : parseInput(SummarySchema, summary, 'summary');
  if (record && record.sessionId !== sid) throw new MemexError('MEMEX_INVALID_INPUT', `the summary is of session ${record.sessionId}, not ${sid}`);
  await ctx.as(uid, async (client) => {
    await requireSession(client, uid, sid);
    if (!record) {
      await client.query('DELETE FROM memex.summaries WHERE user_id = $1 AND session_id = $2', [uid, sid]);
      return;
    }
    await client.query(
      `INSERT INTO memex.summaries (user_id, session_id, text, covers_through_message_id, covered_messages, method, model, tokens, encoding, items, centroid, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
       ON CONFLICT (user_id, session_id) DO UPDATE SET text = EXCLUDED.text, covers_through_message_id = EXCLUDED.covers_through_message_id,
         covered_messages = EXCLUDED.covered_messages, method = EXCLUDED.method, model = EXCLUDED.model, tokens = EXCLUDED.tokens,
         encoding = EXCLUDED.encoding, items = EXCLUDED.items, centroid = EXCLUDED.centroid, updated_at = EXCLUDED.updated_at`,
      [
        uid,
        sid,
        record.text,
        record.coversThroughMessageId,
        record.coveredMessages,
        record.method,
        record.model ?? null,
        record.tokens,
        record.encoding ?? null,
        record.items ? JSON.stringify(record.items) : null,
        record.centroid ? JSON.stringify(record.centroid) : null,
        record.updatedAt,
      ],
    );
  });
}

// ---- restoring a copy (memex migrate): the record as given, id and times included

/** A new note goes after the others (its `seq`); a replaced one keeps its place. */
export async function restoreNote(ctx: PgContext, userId: string, input: Note): Promise<Note> {
  const uid = parseId('user', userId);
  const note = parseInput(NoteSchema, input, 'note');
  return ctx.as(uid, async (client) => {
    await requireUser(client, uid);
    const { rows } = await client.query<NoteRow>(
      `INSERT INTO memex.notes (user_id, id, kind, text, pinned, metadata, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (user_id, id) DO UPDATE SET kind = EXCLUDED.kind, text = EXCLUDED.text, pinned = EXCLUDED.pinned, metadata = EXCLUDED.metadata, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at
       RETURNING ${NOTE_COLUMNS}`,
      [uid, note.id, note.kind, note.text, note.pinned, note.metadata, note.createdAt, note.updatedAt],
    );
    return noteOf(rows[0] as NoteRow);
  });
}
