import { z } from 'zod';
import { MemexError, NOTE_KINDS, type NewNote, type Note, type NotePatch } from '../core/index.js';
import type { ChatModel } from '../llm/index.js';

/**
 * Memory extraction: after an exchange, the configured model proposes durable facts about the user
 * (who they are, what they prefer, what they asked to be remembered), as operations against the
 * notes they already have: add a note, update one (a correction or a refinement), or nothing.
 * Nothing is ever deleted by the model; a note it updates keeps its earlier texts in
 * `metadata.memory.history`, so every change can be read back and undone.
 */

/** The longest note extraction writes: a note is a sentence, not a summary. */
const MAX_NOTE_CHARS = 500;

/** What the model may answer: a JSON object with its operations (anything else changes nothing). */
const OperationSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('add'), text: z.string().trim().min(1).max(MAX_NOTE_CHARS), kind: z.enum(NOTE_KINDS).catch('fact').default('fact') }),
  z.object({ op: z.literal('update'), id: z.string().min(1).max(100), text: z.string().trim().min(1).max(MAX_NOTE_CHARS) }),
  z.object({ op: z.literal('none') }),
]);
const AnswerSchema = z.object({ operations: z.array(z.unknown()).max(50) });

/** At most this many changes from one exchange: a model that proposes more is summarising, not remembering. */
const MAX_CHANGES = 5;
/** The user's notes the model sees (the most recently changed): enough to update rather than repeat. */
const NOTES_SHOWN = 50;

export interface ExtractDeps {
  model: ChatModel;
  listNotes(userId: string): Promise<Note[]>;
  addNote(userId: string, note: NewNote): Promise<Note>;
  updateNote(userId: string, noteId: string, patch: NotePatch): Promise<Note>;
}

export interface Exchange {
  sessionId: string;
  /** The user's turn and the assistant's reply, as stored. */
  user: { id: string; text: string };
  assistant: { id: string; text: string };
}

export interface MemoryChange {
  op: 'add' | 'update';
  note: Note;
  /** For an update, the text it replaced. */
  previous?: string;
}

export interface ExtractResult {
  changes: MemoryChange[];
  /** Operations not applied, and why (an unknown note id, a duplicate, over the limit, malformed). */
  ignored: { operation: unknown; reason: string }[];
}

interface HistoryEntry {
  at: string;
  op: 'add' | 'update';
  text: string;
  sessionId: string;
  messageId: string;
  model: string | null;
}

/** Runs extraction for one exchange; the model's failure is the caller's (a coded MEMEX_LLM_* error), and changes nothing. */
export async function extractMemories(deps: ExtractDeps, userId: string, exchange: Exchange, options: { signal?: AbortSignal } = {}): Promise<ExtractResult> {
  const notes = (await deps.listNotes(userId)).sort((a, b) => b.updatedAt.localeCompare(a.updatedAt)).slice(0, NOTES_SHOWN);
  const reply = await deps.model.complete(
    {
      messages: [
        { role: 'system', content: SYSTEM_PROMPT },
        {
          role: 'user',
          content: JSON.stringify({
            notes: notes.map((note) => ({ id: note.id, kind: note.kind, text: note.text })),
            exchange: { user: exchange.user.text.slice(0, 8000), assistant: exchange.assistant.text.slice(0, 8000) },
          }),
        },
      ],
      // No response_format: servers differ on it (LM Studio refuses json_object); the prompt asks for JSON and the parse is lenient.
    },
    options.signal ? { signal: options.signal } : {},
  );
  const result: ExtractResult = { changes: [], ignored: [] };
  const operations = parseOperations(reply.content ?? '', result);
  const byId = new Map(notes.map((note) => [note.id as string, note]));
  const known = new Set(notes.map((note) => normalise(note.text)));
  const now = (): string => new Date().toISOString();
  const entry = (op: HistoryEntry['op'], text: string, messageId: string): HistoryEntry => ({ at: now(), op, text, sessionId: exchange.sessionId, messageId, model: reply.model ?? null });
  for (const operation of operations) {
    if (operation.op === 'none') continue;
    if (result.changes.length >= MAX_CHANGES) {
      result.ignored.push({ operation, reason: `more than ${MAX_CHANGES} changes from one exchange` });
      continue;
    }
    if (known.has(normalise(operation.text))) {
      result.ignored.push({ operation, reason: 'a note already says this' });
      continue;
    }
    if (operation.op === 'add') {
      const note = await deps.addNote(userId, {
        text: operation.text,
        kind: operation.kind,
        pinned: false,
        metadata: { memory: { source: 'extraction', history: [entry('add', operation.text, exchange.assistant.id)] } },
      });
      known.add(normalise(note.text));
      result.changes.push({ op: 'add', note });
      continue;
    }
    const current = byId.get(operation.id);
    if (!current) {
      result.ignored.push({ operation, reason: 'no note of the user has this id' });
      continue;
    }
    const memory = (current.metadata.memory ?? {}) as { history?: HistoryEntry[] };
    const history = [...(memory.history ?? []), { ...entry('update', operation.text, exchange.assistant.id), previous: current.text }];
    const note = await deps.updateNote(userId, current.id, { text: operation.text, metadata: { ...current.metadata, memory: { ...memory, source: (memory as { source?: string }).source ?? 'user', history } } });
    byId.set(note.id, note);
    known.add(normalise(note.text));
    result.changes.push({ op: 'update', note, previous: current.text });
  }
  return result;
}

function parseOperations(text: string, result: ExtractResult): z.infer<typeof OperationSchema>[] {
  let parsed: unknown;
  try {
    // Some models wrap JSON in a code fence despite being asked not to.
    parsed = JSON.parse(text.replace(/^\s*```(?:json)?\s*|\s*```\s*$/g, ''));
  } catch (cause) {
    throw new MemexError('MEMEX_LLM_BAD_RESPONSE', 'the model did not answer memory extraction with JSON', { cause, details: { reply: text.slice(0, 200) } });
  }
  const answer = AnswerSchema.safeParse(parsed);
  if (!answer.success) throw new MemexError('MEMEX_LLM_BAD_RESPONSE', `the model's memory operations are not { "operations": [...] }: ${answer.error.issues[0]?.message ?? ''}`);
  const operations: z.infer<typeof OperationSchema>[] = [];
  for (const raw of answer.data.operations) {
    const operation = OperationSchema.safeParse(raw);
    if (operation.success) operations.push(operation.data);
    // A "delete" or anything else unknown is reported, never applied: the model does not remove what the user has.
    else result.ignored.push({ operation: raw, reason: `not an add, update or none operation (${(operation.error.issues[0]?.message ?? '').slice(0, 120)})` });
  }
  return operations;
}

function normalise(text: string): string {
  return text.toLowerCase().replace(/\s+/g, ' ').replace(/[.!]+$/, '').trim();
}

const SYSTEM_PROMPT = `You maintain a user's long-term memory for an assistant.
You get the user's existing notes (id, kind, text) and the latest exchange between the user and the assistant.
Propose what to remember durably about the user: facts about them, their preferences, and instructions they gave for the future.
Only what the USER said or confirmed counts; ignore the assistant's suggestions, small talk, and anything about this conversation only.
Answer with JSON only, no prose: {"operations": [...]} where each operation is one of
  {"op": "add", "kind": "fact" | "preference" | "instruction", "text": "<one short sentence about the user, third person>"}
  {"op": "update", "id": "<an existing note's id>", "text": "<the corrected or refined note>"}  (when the exchange corrects or refines that note)
  {"op": "none"}
Never repeat what a note already says. Never delete. At most 3 operations. If nothing is worth remembering: {"operations": [{"op": "none"}]}.`;
