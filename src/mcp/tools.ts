import { basename } from 'node:path';
import { z } from 'zod';
import {
  ContextOptionsSchema,
  NewMessageSchema,
  NewNoteSchema,
  NewSessionSchema,
  PageOptionsSchema,
  SearchOptionsSchema,
  SessionIdSchema,
  SessionListOptionsSchema,
  parseInput,
} from '../core/index.js';
import type { IngestPath, McpMemex } from './api.js';

/** What a tool runs with: the library, the one user the connection acts as, and the request's signal. */
export interface ToolContext {
  memex: McpMemex;
  userId: string;
  signal: AbortSignal;
  ingest: IngestPath | undefined;
  /** Tells the client how long work is going (when it asked, with a progress token). */
  progress: ((message: string) => void) | undefined;
}

export interface ToolAnnotations {
  readOnlyHint?: boolean;
  destructiveHint?: boolean;
  idempotentHint?: boolean;
  openWorldHint?: boolean;
}

/** One MCP tool: its input is parsed with `input` (the library's own schemas) before `run` sees it. */
export interface Tool {
  name: string;
  title: string;
  description: string;
  input: z.ZodType;
  annotations: ToolAnnotations;
  /** Runs with arguments already parsed; answers a JSON object (the tool's structured result). */
  run(args: unknown, context: ToolContext): Promise<Record<string, unknown>>;
}

function tool<S extends z.ZodType>(definition: Omit<Tool, 'run'> & { input: S; run: (args: z.output<S>, context: ToolContext) => Promise<Record<string, unknown>> }): Tool {
  return {
    ...definition,
    // Async, so that a bad argument is a rejection like any other failure, never a synchronous throw.
    run: async (args, context) => definition.run(parseInput(definition.input, args, `${definition.name} arguments`), context),
  };
}

const RememberInput = z
  .strictObject({
    message: NewMessageSchema.optional().describe('A chat message to store: { role, content } in the OpenAI format (role "user" for what the user said).'),
    note: NewNoteSchema.optional().describe('A long-term note about the user ({ text, kind?: fact | preference | instruction | note }), kept across sessions.'),
    sessionId: SessionIdSchema.optional().describe('The session to append the message to; a new session is created when left out.'),
    title: NewSessionSchema.shape.title.describe('The title of the session created when no sessionId is given.'),
  })
  .superRefine((input, ctx) => {
    if ((input.message === undefined) === (input.note === undefined)) ctx.addIssue({ code: 'custom', path: ['message'], message: 'give exactly one of message or note' });
    if (input.note !== undefined && (input.sessionId !== undefined || input.title !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['sessionId'], message: 'notes belong to the user, not to a session: leave out sessionId and title' });
    }
    if (input.sessionId !== undefined && input.title !== undefined) ctx.addIssue({ code: 'custom', path: ['title'], message: 'title names a new session: leave it out with sessionId' });
  });

/** The body of POST /v1/search (the query and the library's search options), plus one session as a shorthand. */
const RecallInput = SearchOptionsSchema.extend({
  query: z.string().trim().min(1).max(10_000).describe('What to recall.'),
  sessionId: SessionIdSchema.optional().describe('Only this session (the same as sessionIds: [sessionId]).'),
});

const ReadSessionInput = PageOptionsSchema.extend({ sessionId: SessionIdSchema });

const IngestInput = z.strictObject({
  path: z.string().min(1).max(4096).describe("The file's path on this machine: absolute (best), `~/…` for the home folder, or relative to the folder the MCP server started in."),
  sessionId: SessionIdSchema.optional().describe('The session to add the file to; a new session named after the file is created when left out.'),
  password: z.string().min(1).max(1024).optional().describe('The password of an encrypted PDF.'),
});

const rememberTool = tool({
  name: 'remember',
  title: 'Remember',
  description:
    "Store something in the user's memory: a chat message appended to a session (a new session when no sessionId is given), or a long-term note about the user. Stored messages become searchable with `recall` within moments. Imported conversations are read-only.",
  input: RememberInput,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  run: async ({ message, note, sessionId, title }, { memex, userId }) => {
    if (note !== undefined) return { note: await memex.notes.add(userId, note) };
    if (message === undefined) throw new Error('unreachable: the input has a message or a note');
    if (sessionId !== undefined) return { sessionId, created: false, message: await memex.messages.append(userId, sessionId, message) };
    const session = await memex.sessions.create(userId, title === undefined ? {} : { title });
    try {
      return { sessionId: session.id, created: true, message: await memex.messages.append(userId, session.id, message) };
    } catch (cause) {
      // A message the store refuses (too large, say) leaves no empty session behind.
      await memex.sessions.delete(userId, session.id).catch(() => undefined);
      throw cause;
    }
  },
});

const recallTool = tool({
  name: 'recall',
  title: 'Recall',
  description:
    "Search everything the user's memory holds (messages of every session, ingested files, imported conversations) for what is most relevant to a query, best first. Filter by session (sessionId, sessionIds), origin (native, imported, or one service), time (after, before: ISO times), roles or sources; k results (default 10).",
  input: RecallInput,
  annotations: { readOnlyHint: true, openWorldHint: false },
  run: async ({ query, sessionId, ...options }, { memex, userId }) => {
    const sessionIds = sessionId === undefined ? options.sessionIds : [...(options.sessionIds ?? []), sessionId];
    const report = await memex.search(userId, query, { ...options, ...(sessionIds ? { sessionIds } : {}) });
    return {
      hits: report.hits.map((hit) => ({
        sessionId: hit.sessionId,
        chunkId: hit.chunkId,
        score: hit.score,
        text: hit.text,
        source: hit.source,
        ...(hit.imported ? { imported: hit.imported } : {}),
      })),
      mode: report.mode,
      matching: report.matching,
    };
  },
});

const contextTool = tool({
  name: 'build_context',
  title: 'Build a context window',
  description:
    "The messages to send to a model for a session's next turn, fitted to `budget` tokens (the model's context length, with a reserve kept for the reply): system prompt and persona, the user's notes, memories recalled from other sessions for `query` (default: the latest user turn), a summary of older turns and the most recent turns. The report says what each part cost and what was left out.",
  input: ContextOptionsSchema,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  run: async (options, { memex, userId, signal }) => {
    const window = await memex.buildContext(userId, { ...options, signal });
    return { messages: window.messages, report: window.report };
  },
});

const listSessionsTool = tool({
  name: 'list_sessions',
  title: 'List sessions',
  description: "The user's sessions, most recently active first, with titles, message counts and a preview; page with `cursor` (a page's nextCursor). Native sessions by default; origin `imported` or `all` for imported chat exports.",
  input: SessionListOptionsSchema,
  annotations: { readOnlyHint: true, openWorldHint: false },
  run: async (options, { memex, userId }) => {
    const page = await memex.sessions.list(userId, options);
    return { sessions: page.sessions, total: page.total, nextCursor: page.nextCursor };
  },
});

const readSessionTool = tool({
  name: 'read_session',
  title: 'Read a session',
  description: "A page of a session's messages, oldest first within the page: from the start, at `offset`, after `cursor` (a page's nextCursor), before `before` (a page's prevCursor), or the `latest` ones; `limit` per page (default 100).",
  input: ReadSessionInput,
  annotations: { readOnlyHint: true, openWorldHint: false },
  run: async ({ sessionId, ...page }, { memex, userId }) => {
    const session = await memex.sessions.get(userId, sessionId);
    const messages = await memex.messages.list(userId, sessionId, page);
    return { session, messages: messages.messages, total: messages.total, nextCursor: messages.nextCursor, prevCursor: messages.prevCursor };
  },
});

const ingestTool = tool({
  name: 'ingest_file',
  title: 'Ingest a file',
  description:
    'Store a PDF, an image or a text document (.txt, .md, .html, .json) from this machine in a session and make its text searchable (the text layer of PDFs, OCR for scans and images). The same file twice is stored once.',
  input: IngestInput,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  run: async ({ path, sessionId, password }, { memex, userId, signal, ingest, progress }) => {
    if (!ingest) throw new Error('unreachable: ingest_file is only listed where files can be read');
    const target = sessionId ?? (await memex.sessions.create(userId, { title: basename(path).slice(0, 500) || 'file' })).id;
    const result = await ingest(target, path, {
      ...(password !== undefined ? { password } : {}),
      signal,
      ...(progress ? { onProgress: (p: { phase: string; done: number; total: number }) => progress(`${p.phase} ${p.done}/${p.total}`) } : {}),
    });
    return { sessionId: target, ...result };
  },
});

/**
 * The tools a connection offers. `ingest_file` only where the server may read files of the
 * machine it runs on for its caller: stdio, where caller and server are the same person. Over
 * HTTP, a path would reach the server's disk, so the tool does not exist there.
 */
export function toolsFor(options: { ingest: boolean }): Tool[] {
  return [rememberTool, recallTool, contextTool, listSessionsTool, readSessionTool, ...(options.ingest ? [ingestTool] : [])];
}
