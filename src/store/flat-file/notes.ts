import { rm } from 'node:fs/promises';
import { type ContextHistory, ContextHistorySchema, FORMAT_VERSION, isMemexError, MemexError, type NewNote, newNoteId, NewNoteSchema, type Note, type NotePatch, NotePatchSchema, NoteSchema, parseId, parseInput, type Summary, SummarySchema, type UserId } from '../../core/index.js';
import { readJsonRecord, wrapIo } from '../durable.js';
import { definedOnly, type FlatFileContext, frozen, nowIso, sessionKey } from './context.js';
import { requireUser } from './users.js';
import { loadSession } from './session-state.js';

export async function getSummary(ctx: FlatFileContext, userId: string, sessionId: string): Promise<Summary | null> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  return ctx.mutex.run(sessionKey(uid, sid), async () => {
    const state = await loadSession(ctx, uid, sid);
    if (state.summary !== undefined) return state.summary;
    const path = ctx.layout.sessionFile(uid, sid, 'summary.json');
    try {
      const summary = await readJsonRecord(path, SummarySchema, (reason, cause) => new MemexError('MEMEX_SESSION_CORRUPT', reason, { cause, details: { path } }));
      state.summary = summary && summary.sessionId === sid ? frozen(summary) : null;
    } catch (cause) {
      // Derived from the messages: an unreadable one is reported and made again, never fatal.
      if (!isMemexError(cause, 'MEMEX_SESSION_CORRUPT')) throw cause;
      ctx.warn({ kind: 'unreadable', path, code: cause.code, message: cause.message });
      state.summary = null;
    }
    return state.summary;
  });
}

export async function setSummary(ctx: FlatFileContext, userId: string, sessionId: string, summary: Summary | null): Promise<void> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const record = summary === null ? null : parseInput(SummarySchema, summary, 'summary');
  if (record && record.sessionId !== sid) throw new MemexError('MEMEX_INVALID_INPUT', `the summary is of session ${record.sessionId}, not ${sid}`);
  await ctx.mutex.run(sessionKey(uid, sid), async () => {
    const state = await loadSession(ctx, uid, sid);
    const path = ctx.layout.sessionFile(uid, sid, 'summary.json');
    state.summary = undefined;
    // Derived data, like the vectors: replaced atomically, fsynced only under `always`.
    if (record) await ctx.durability.writeJsonAtomic(path, record, { durable: ctx.durability.policy === 'always' });
    else await rm(path, { force: true }).catch((cause: unknown) => {
      throw wrapIo(cause, `cannot remove ${path}`);
    });
    state.summary = record ? frozen(record) : null;
  });
}

export async function listNotes(ctx: FlatFileContext, userId: string): Promise<Note[]> {
  const uid = parseId('user', userId);
  // A fresh array (callers sort it), of the cached notes (frozen).
  return ctx.mutex.run(`notes:${uid}`, async () => [...(await readNotes(ctx, uid)).notes]);
}

export async function addNote(ctx: FlatFileContext, userId: string, input: NewNote): Promise<Note> {
  const uid = parseId('user', userId);
  const fields = parseInput(NewNoteSchema, input, 'note');
  return ctx.mutex.run(`notes:${uid}`, async () => {
    const history = await readNotes(ctx, uid);
    const id = fields.id ?? newNoteId();
    if (history.notes.some((note) => note.id === id)) throw new MemexError('MEMEX_NOTE_EXISTS', `note ${id} already exists`, { details: { noteId: id } });
    const now = nowIso();
    const note: Note = { id, kind: fields.kind, text: fields.text, pinned: fields.pinned, createdAt: now, updatedAt: now, metadata: fields.metadata ?? {} };
    await writeNotes(ctx, uid, { ...history, notes: [...history.notes, note] });
    return note;
  });
}

export async function restoreNote(ctx: FlatFileContext, userId: string, input: Note): Promise<Note> {
  const uid = parseId('user', userId);
  const note = parseInput(NoteSchema, input, 'note');
  return ctx.mutex.run(`notes:${uid}`, async () => {
    const history = await readNotes(ctx, uid);
    const notes = history.notes.some((n) => n.id === note.id) ? history.notes.map((n) => (n.id === note.id ? note : n)) : [...history.notes, note];
    await writeNotes(ctx, uid, { ...history, notes });
    return note;
  });
}

export async function updateNote(ctx: FlatFileContext, userId: string, noteId: string, patch: NotePatch): Promise<Note> {
  const [uid, nid] = [parseId('user', userId), parseId('note', noteId)];
  const changes = parseInput(NotePatchSchema, patch, 'note patch');
  return ctx.mutex.run(`notes:${uid}`, async () => {
    const history = await readNotes(ctx, uid);
    const current = history.notes.find((note) => note.id === nid);
    if (!current) throw noteNotFound(uid, nid);
    const next: Note = { ...current, ...definedOnly(changes), updatedAt: nowIso() };
    await writeNotes(ctx, uid, { ...history, notes: history.notes.map((note) => (note.id === nid ? next : note)) });
    return next;
  });
}

export async function deleteNote(ctx: FlatFileContext, userId: string, noteId: string): Promise<void> {
  const [uid, nid] = [parseId('user', userId), parseId('note', noteId)];
  await ctx.mutex.run(`notes:${uid}`, async () => {
    const history = await readNotes(ctx, uid);
    if (!history.notes.some((note) => note.id === nid)) throw noteNotFound(uid, nid);
    await writeNotes(ctx, uid, { ...history, notes: history.notes.filter((note) => note.id !== nid) });
  });
}

/**
 * The user's notes file; a missing one is empty, an unreadable one an error (notes are not derived:
 * nothing overwrites them). Kept in memory once read: only this process writes it (the data dir's lock).
 */
async function readNotes(ctx: FlatFileContext, userId: UserId): Promise<ContextHistory> {
  await requireUser(ctx, userId);
  const cached = ctx.notesCache.get(userId);
  if (cached) return cached;
  const path = ctx.layout.contextHistory(userId);
  const history = await readJsonRecord(path, ContextHistorySchema, (reason, cause) => new MemexError('MEMEX_USER_CORRUPT', reason, { cause, details: { userId, path } }));
  if (history && history.userId !== userId) throw new MemexError('MEMEX_USER_CORRUPT', `${path} belongs to user ${history.userId}`, { details: { userId, path } });
  return remember(ctx, userId, history ?? { v: FORMAT_VERSION, userId, notes: [] });
}

async function writeNotes(ctx: FlatFileContext, userId: UserId, history: ContextHistory): Promise<void> {
  // A failed write leaves the file as it was or (rarely) as written: read it again next time.
  ctx.notesCache.delete(userId);
  await ctx.durability.writeJsonAtomic(ctx.layout.contextHistory(userId), history);
  // A copy: the notes just written are also returned to the caller, unfrozen.
  remember(ctx, userId, structuredClone(history));
}

/** Users whose notes are kept in memory, the most recently used. */
const NOTES_CACHE_USERS = 1000;

function remember(ctx: FlatFileContext, userId: UserId, history: ContextHistory): ContextHistory {
  if (ctx.notesCache.size >= NOTES_CACHE_USERS) ctx.notesCache.delete(ctx.notesCache.keys().next().value as UserId);
  const kept = frozen(history);
  ctx.notesCache.set(userId, kept);
  return kept;
}

function noteNotFound(userId: UserId, noteId: string): MemexError {
  return new MemexError('MEMEX_NOTE_NOT_FOUND', `note ${noteId} does not exist for user ${userId}`, { details: { noteId } });
}
