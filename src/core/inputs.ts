import { z } from 'zod';
import { TOKEN_ENCODINGS } from './config.js';
import { MemexError } from './errors.js';
import { IMPORT_SOURCES, MessageIdSchema, NoteIdSchema, PersonaIdSchema, SessionIdSchema, UserIdSchema, type PersonaId } from './ids.js';
import { WhereSchema } from './where.js';
import { AttachmentRefSchema, ContentPartSchema, FORMAT_VERSION, MESSAGE_FORMAT_VERSION, ToolCallSchema, type ContentPart, type ToolCall, MetadataSchema, NOTE_KINDS, RoleSchema, SessionOriginSchema, TagSchema, TimestampInputSchema } from './schemas.js';

/** The most a caller's metadata object may take as JSON (UTF-8 bytes), and how deep it may nest. */
export const METADATA_LIMITS = { bytes: 64 * 1024, depth: 32 } as const;

/**
 * Metadata as a caller sends it: plain JSON, at most 64 KiB and 32 levels deep. A session's is
 * rewritten with every append and a message's is read by every filtered search, so an unbounded
 * one would slow everything after it; these limits leave room for any real use.
 */
const MetadataInputSchema = MetadataSchema.superRefine((metadata, ctx) => {
  let text: string | undefined;
  try {
    text = JSON.stringify(metadata);
  } catch {
    text = undefined;
  }
  if (text === undefined) {
    ctx.addIssue({ code: 'custom', message: 'metadata must be plain JSON (no cycles, functions or big integers)' });
    return;
  }
  const bytes = Buffer.byteLength(text);
  if (bytes > METADATA_LIMITS.bytes) ctx.addIssue({ code: 'custom', message: `metadata takes ${bytes} bytes as JSON; the limit is ${METADATA_LIMITS.bytes}` });
  else if (depthOf(metadata) > METADATA_LIMITS.depth) ctx.addIssue({ code: 'custom', message: `metadata nests more than ${METADATA_LIMITS.depth} levels deep` });
});

function depthOf(value: unknown): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop() as [unknown, number];
    if (item === null || typeof item !== 'object') continue;
    deepest = Math.max(deepest, depth);
    if (deepest > METADATA_LIMITS.depth) return deepest;
    for (const child of Object.values(item)) stack.push([child, depth + 1]);
  }
  return deepest;
}

/**
 * What callers send in. The same schemas validate library calls, HTTP bodies and CLI arguments,
 * so the three faces accept exactly the same things.
 */
export const NewUserSchema = z.strictObject({
  id: UserIdSchema,
  name: z.string().min(1).max(200).optional(),
  metadata: MetadataInputSchema.optional(),
});
export type NewUser = z.input<typeof NewUserSchema>;

export const ProfilePatchSchema = z.strictObject({
  name: z.string().min(1).max(200).optional(),
  metadata: MetadataInputSchema.optional(),
});
export type ProfilePatch = z.input<typeof ProfilePatchSchema>;

export const NewSessionSchema = z.strictObject({
  title: z.string().trim().min(1).max(500).optional(),
  personaId: PersonaIdSchema.nullable().optional(),
  origin: SessionOriginSchema.optional(),
  metadata: MetadataInputSchema.optional(),
  createdAt: TimestampInputSchema.optional(),
  /** A panel's personas; each must exist. */
  participants: z.array(PersonaIdSchema).max(32).optional(),
  tags: z.array(TagSchema).max(100).optional(),
});
export type NewSession = z.input<typeof NewSessionSchema>;

export const SessionPatchSchema = z.strictObject({
  title: z.string().trim().min(1).max(500).optional(),
  personaId: PersonaIdSchema.nullable().optional(),
  metadata: MetadataInputSchema.optional(),
  /** A panel's personas (replaces the list); each must exist. */
  participants: z.array(PersonaIdSchema).max(32).optional(),
  /** Tags to add and to remove (removal wins when a tag is in both); applied atomically to the session's current tags. */
  addTags: z.array(TagSchema).max(100).optional(),
  removeTags: z.array(TagSchema).max(100).optional(),
});
export type SessionPatch = z.input<typeof SessionPatchSchema>;

/** What a store's `updateSession` takes: the caller's patch, and the links only the facade writes. */
export const SessionUpdateSchema = SessionPatchSchema.extend({
  /** Adds a fork to the session's `forks` (once; in one write, so two forks at once both stay listed). */
  addFork: SessionIdSchema.optional(),
});
export type SessionUpdate = z.input<typeof SessionUpdateSchema>;

/**
 * A message to append. Besides Memex's own fields it takes the OpenAI chat message as is: `content`
 * as a string or an array of content parts (text and `image_url`; an array without text is fine
 * for images), `name`, an assistant's `tool_calls` (whose `content` may then be null or left out),
 * and a tool message's `tool_call_id` (the same as `toolCallId`).
 */
export const NewMessageSchema = z
  .strictObject({
    /** Optional caller-chosen id (imports keep the source's ids); generated when absent. */
    id: MessageIdSchema.optional(),
    role: RoleSchema,
    content: z.union([z.string(), z.array(ContentPartSchema).max(100), z.null()]).optional(),
    name: z.string().min(1).max(256).optional(),
    createdAt: TimestampInputSchema.optional(),
    metadata: MetadataInputSchema.optional(),
    attachments: z.array(AttachmentRefSchema).max(100).optional(),
    tool_calls: z.array(ToolCallSchema).min(1).max(128).optional(),
    tool_call_id: z.string().min(1).max(256).optional(),
    toolCallId: z.string().min(1).max(256).optional(),
    toolName: z.string().min(1).max(256).optional(),
    /** In a panel, the persona speaking (assistant messages only). */
    personaId: PersonaIdSchema.optional(),
  })
  .superRefine((message, ctx) => {
    if (message.personaId !== undefined && message.role !== 'assistant') ctx.addIssue({ code: 'custom', path: ['personaId'], message: 'only assistant messages speak as a persona' });
    if (message.tool_calls && message.role !== 'assistant') ctx.addIssue({ code: 'custom', path: ['tool_calls'], message: 'only assistant messages call tools' });
    for (const key of ['tool_call_id', 'toolCallId', 'toolName'] as const) {
      if (message[key] !== undefined && message.role !== 'tool') ctx.addIssue({ code: 'custom', path: [key], message: 'only tool messages answer a tool call' });
    }
    if (message.tool_call_id !== undefined && message.toolCallId !== undefined && message.tool_call_id !== message.toolCallId) {
      ctx.addIssue({ code: 'custom', path: ['tool_call_id'], message: 'tool_call_id and toolCallId disagree' });
    }
    if ((message.content === undefined || message.content === null) && !message.tool_calls) {
      ctx.addIssue({ code: 'custom', path: ['content'], message: 'content is required unless the message calls tools' });
    }
  });
export type NewMessage = z.input<typeof NewMessageSchema>;

/** What a new message stores besides its ids, time, metadata and attachments: its text and OpenAI fields. */
export interface MessageBody {
  v: 1 | 2;
  content: string;
  parts?: ContentPart[];
  name?: string;
  toolCalls?: ToolCall[];
  toolCallId?: string;
  toolName?: string;
  personaId?: PersonaId;
  /** Characters it stores (text, image URLs, call arguments): what `limits.maxMessageChars` bounds. */
  size: number;
}

/** The text of OpenAI content parts: the text parts, joined by a newline (images have none). */
function textOfParts(parts: readonly ContentPart[]): string {
  return parts.flatMap((part) => (part.type === 'text' ? [part.text] : [])).join('\n');
}

/** A parsed new message as it is stored: content arrays keep their parts, and the text is what they say. */
export function messageBody(input: z.output<typeof NewMessageSchema>): MessageBody {
  const parts = Array.isArray(input.content) ? input.content : undefined;
  const content = parts ? textOfParts(parts) : typeof input.content === 'string' ? input.content : '';
  const toolCallId = input.toolCallId ?? input.tool_call_id;
  const body: MessageBody = {
    v: parts || input.name !== undefined || input.tool_calls || input.personaId !== undefined ? MESSAGE_FORMAT_VERSION : FORMAT_VERSION,
    content,
    ...(parts ? { parts } : {}),
    ...(input.name !== undefined ? { name: input.name } : {}),
    ...(input.tool_calls ? { toolCalls: input.tool_calls } : {}),
    ...(toolCallId !== undefined ? { toolCallId } : {}),
    ...(input.toolName !== undefined ? { toolName: input.toolName } : {}),
    ...(input.personaId !== undefined ? { personaId: input.personaId } : {}),
    size: content.length,
  };
  for (const part of parts ?? []) if (part.type === 'image_url') body.size += part.image_url.url.length;
  for (const call of input.tool_calls ?? []) body.size += call.function.name.length + call.function.arguments.length;
  return body;
}

export const NewPersonaSchema = z.strictObject({
  id: PersonaIdSchema.optional(),
  name: z.string().min(1).max(200),
  instructions: z.string().max(100_000),
  metadata: MetadataInputSchema.optional(),
});
export type NewPersona = z.input<typeof NewPersonaSchema>;

export const PersonaPatchSchema = z.strictObject({
  name: z.string().min(1).max(200).optional(),
  instructions: z.string().max(100_000).optional(),
  metadata: MetadataInputSchema.optional(),
});
export type PersonaPatch = z.input<typeof PersonaPatchSchema>;

export const NewNoteSchema = z.strictObject({
  id: NoteIdSchema.optional(),
  text: z.string().trim().min(1).max(10_000),
  kind: z.enum(NOTE_KINDS).default('note'),
  pinned: z.boolean().default(true),
  metadata: MetadataInputSchema.optional(),
});
export type NewNote = z.input<typeof NewNoteSchema>;

export const NotePatchSchema = z.strictObject({
  text: z.string().trim().min(1).max(10_000).optional(),
  kind: z.enum(NOTE_KINDS).optional(),
  pinned: z.boolean().optional(),
  metadata: MetadataInputSchema.optional(),
});
export type NotePatch = z.input<typeof NotePatchSchema>;

const shareSchema = z.number().min(0).max(1);

/** What `buildContext` takes (besides a tokenizer object and a signal, which only the library passes). */
export const ContextOptionsSchema = z.strictObject({
  sessionId: SessionIdSchema,
  /** The model's context length in tokens: the window and the reply reserve fit in it together. */
  budget: z.number().int().min(1).max(10_000_000),
  /** Tokens kept free for the reply (default `context.replyTokens`). */
  reserve: z.number().int().min(0).optional(),
  /** What to recall memories for; default the session's latest user turn. */
  query: z.string().trim().min(1).max(10_000).optional(),
  /** The tiktoken encoding to count in (default `context.encoding`). */
  encoding: z.enum(TOKEN_ENCODINGS).optional(),
  /** The app's own system prompt, put before the persona's instructions. */
  system: z.string().max(100_000).optional(),
  /** Use this persona instead of the session's (null: none). */
  personaId: PersonaIdSchema.nullable().optional(),
  /**
   * Build the window for this participant of a panel: its persona's instructions, its own turns as
   * the assistant's, the other participants' turns as labelled user turns, its own notes.
   */
  participant: PersonaIdSchema.optional(),
  /** Parts to leave out (all are on by default). */
  include: z
    .strictObject({ persona: z.boolean(), notes: z.boolean(), summary: z.boolean(), memories: z.boolean(), recent: z.boolean() })
    .partial()
    .optional(),
  /** Overrides of `context.shares` for this window. */
  shares: z.strictObject({ notes: shareSchema, summary: shareSchema, memories: shareSchema, recent: shareSchema }).partial().optional(),
  /** Chunks to recall (default `context.memories`). */
  memories: z.number().int().min(0).max(200).optional(),
  /** The least cosine similarity of a recalled chunk to the query (default `context.minScore`; null: no floor). */
  minScore: z.number().min(-1).max(1).nullable().optional(),
  /** The least `relevance` (0 to 1) of a recalled chunk (default `context.minRelevance`; null: no floor). */
  minRelevance: z.number().min(0).max(1).nullable().optional(),
  /** Turns each recalled turn brings from around it (default `context.neighbours`; 0 and 0: none). */
  neighbours: z.strictObject({ before: z.number().int().min(0).max(5), after: z.number().int().min(0).max(5) }).partial().optional(),
});
export type ContextOptionsInput = z.input<typeof ContextOptionsSchema>;

/**
 * A page of a session's messages, oldest first within the page. Pick the start one way: `offset`,
 * `cursor` (the messages after a page: its `nextCursor`), `before` (the messages before a page: its
 * `prevCursor`) or `latest` (the last `limit` messages, where a chat view opens). None: from the first.
 */
export const PageOptionsSchema = z.strictObject({
  limit: z.number().int().min(1).max(1000).optional(),
  offset: z.number().int().min(0).optional(),
  cursor: z.string().max(512).optional(),
  before: z.string().max(512).optional(),
  latest: z.boolean().optional(),
});
export type PageOptions = z.input<typeof PageOptionsSchema>;

export const SESSION_SORTS = ['activity', 'created', 'title', 'messages'] as const;
export type SessionSort = (typeof SESSION_SORTS)[number];

/**
 * A page of a user's sessions: by `offset` or by `cursor` (a page's `nextCursor`, which names the
 * sort it was made for). Sorted by last activity (last message, else creation), newest first, by
 * default; `sort` picks creation time, title (ignoring case; untitled first when ascending) or
 * message count, `order` the direction. Ties break by session id in the same direction.
 */
export const SessionListOptionsSchema = z.strictObject({
  limit: z.number().int().min(1).max(1000).optional(),
  offset: z.number().int().min(0).optional(),
  cursor: z.string().max(512).optional(),
  /** Only sessions whose title contains this, ignoring case and accents. */
  title: z.string().trim().min(1).max(500).optional(),
  /**
   * Sessions Memex recorded (`native`), imported chat exports (`imported`), or both (`all`). The
   * store lists all by default; the library, CLI and HTTP list native sessions unless asked.
   */
  origin: z.enum(['native', 'imported', 'all']).optional(),
  /** Archived sessions are listed by default (with `archivedAt`); `exclude` hides them, `only` lists just them. */
  archived: z.enum(['include', 'exclude', 'only']).optional(),
  sort: z.enum(SESSION_SORTS).optional(),
  /** `desc` by default. */
  order: z.enum(['asc', 'desc']).optional(),
  /** Only sessions carrying every one of these tags. */
  tags: z.array(TagSchema).min(1).max(20).optional(),
  /** Only sessions with this persona. */
  personaId: PersonaIdSchema.optional(),
  /** Only sessions last active (last message, else creation) at or after / before this time. */
  after: TimestampInputSchema.optional(),
  before: TimestampInputSchema.optional(),
  /** `exclude` (default) hides sessions in the trash, `only` lists just them (the trash), `include` both. */
  trashed: z.enum(['exclude', 'only', 'include']).optional(),
});
export type SessionListOptions = z.input<typeof SessionListOptionsSchema>;

export const SEARCH_MODES = ['vector', 'lexical', 'hybrid'] as const;
export type SearchMode = (typeof SEARCH_MODES)[number];
export const SOURCE_KINDS = ['message', 'file'] as const;

/**
 * What `search` takes besides the query. Filters combine with AND; a list filter matches any of
 * its values. Ranking knobs left out fall back to the `search` section of the config.
 */
export const SearchOptionsSchema = z.strictObject({
  /** Results wanted (default 10). Vector and hybrid search return `k` whenever `k` chunks match the filters. */
  k: z.number().int().min(1).max(1000).default(10),
  /** `hybrid` (default) fuses vector and lexical ranks; `lexical` finds only chunks sharing a word with the query. */
  mode: z.enum(SEARCH_MODES).default('hybrid'),
  sessionIds: z.array(SessionIdSchema).min(1).max(10_000).optional(),
  excludeSessionIds: z.array(SessionIdSchema).max(10_000).optional(),
  sources: z.array(z.enum(SOURCE_KINDS)).min(1).optional(),
  roles: z.array(RoleSchema).min(1).optional(),
  /** Chunks of messages created at or after / before this time (file chunks have no time and are left out). */
  after: TimestampInputSchema.optional(),
  before: TimestampInputSchema.optional(),
  /** Native sessions only, imported chat exports only, or the exports of one service (`chatgpt`, `claude`, `gemini`, `memex`). */
  origin: z.enum(['native', 'imported', ...IMPORT_SOURCES]).optional(),
  /**
   * Message metadata filter (`{ project: 'x', priority: { $gte: 2 }, $or: [...] }`; see core/where.ts).
   * File chunks have no message metadata: they are matched as an empty object, so they pass only
   * conditions a missing key passes (`$ne`, `$nin`, `$exists: false`).
   */
  where: WhereSchema.optional(),
  /**
   * Maximal marginal relevance: re-rank so near-duplicate chunks do not crowd the results.
   * `lambda` 1 is pure relevance, 0 pure diversity; 0.7 is a common start.
   */
  mmr: z.strictObject({ lambda: z.number().min(0).max(1).default(0.7) }).optional(),
  /**
   * Favour recent chunks: the score is multiplied by `1 - weight + weight * 0.5^(age / halfLifeDays)`,
   * so a chunk `halfLifeDays` old keeps `1 - weight/2` of its score. Ages count from `now` (default: the clock).
   */
  recency: z.strictObject({ halfLifeDays: z.number().positive().max(100_000), weight: z.number().min(0).max(1).default(0.3), now: TimestampInputSchema.optional() }).optional(),
  /** Override the config's HNSW `efSearch` for this query. */
  efSearch: z.number().int().min(1).max(5000).optional(),
  rrfK: z.number().int().min(1).max(1000).optional(),
  vectorWeight: z.number().min(0).max(10).optional(),
  lexicalWeight: z.number().min(0).max(10).optional(),
  /** The contextual list's weight in hybrid fusion (config `search.contextWeight`); 0 leaves it out. */
  contextWeight: z.number().min(0).max(10).optional(),
  /** Which sessions count as conversations for that list (config `search.contextCoherence`). */
  contextCoherence: z.number().min(-1).max(1).optional(),
  /**
   * A relevance floor on the cosine similarity (-1 to 1) of a chunk's embedding to the query's, for
   * the chunks only the vector search found: a chunk that shares a word with the query (a BM25
   * match, in `hybrid` or `lexical` mode) is kept on that evidence, and one found by meaning alone
   * goes when its cosine (the better of its own and its contextual one, in `hybrid`) is below the
   * floor. So `lexical` mode ignores it, and in `vector` mode it
   * applies to every chunk. The floor is on the cosine, not on `score`, because the cosine is the
   * only absolute scale here: a hybrid score is a reciprocal rank fusion, which depends only on
   * ranks (the best chunk scores the same whether it answers the query or is noise), and a BM25
   * score grows with the query's length and the corpus's word statistics. Cosines differ between
   * embedding models (and run high for one-word queries against short texts): calibrate for yours.
   */
  minScore: z.number().min(-1).max(1).optional(),
  /**
   * Query understanding (src/index/query.ts; left out, its defaults): `dates` reads dates and
   * relative times in the query ("in May 2023", "last May", "two weeks before 23 August 2023",
   * "yesterday") against `now` (default `recency.now`, else the clock) and boosts the chunks written
   * then (`boost`: score times `1 + dateWeight`, a range reaching `dateSlackDays` past its end) or
   * keeps only them (`filter`); `stripDates` takes the date words out of the lexical query;
   * `feedback` runs a second lexical pass with `feedbackTerms` terms the first pass's top
   * `feedbackDocs` chunks share (`true`: every query, from a first lexical pass; `documents`, the
   * default: only when most of the search's top `feedbackDocs` hits are in sessions that are not
   * conversations, `search.contextCoherence`, searching again with the terms they share);
   * `names: 'drop'` takes capitalised names out of the lexical query;
   * `speakers: 'boost'` lifts chunks that open with the label of a speaker the question names
   * ("Melanie: ..."), by `1 + speakerWeight`, among the top `speakerDepth` times `k`;
   * `questionWords` is what the vector side embeds of a question: as asked (`keep`), without its
   * scaffolding (`strip`: "What did Melanie paint?" as "Melanie paint") or the mean of both (`both`).
   */
  understand: z
    .strictObject({
      dates: z.enum(['boost', 'filter', 'off']).optional(),
      now: TimestampInputSchema.optional(),
      stripDates: z.boolean().optional(),
      dateWeight: z.number().min(0).max(10).optional(),
      dateSlackDays: z.number().min(0).max(366).optional(),
      feedback: z.union([z.boolean(), z.literal('documents')]).optional(),
      feedbackDocs: z.number().int().min(1).max(50).optional(),
      feedbackTerms: z.number().int().min(1).max(50).optional(),
      names: z.enum(['keep', 'drop']).optional(),
      speakers: z.enum(['boost', 'off']).optional(),
      speakerWeight: z.number().min(0).max(10).optional(),
      speakerDepth: z.number().min(1).max(10).optional(),
      questionWords: z.enum(['keep', 'strip', 'both']).optional(),
    })
    .optional(),
  /**
   * A relevance floor on every chunk: drops those whose `relevance` (0 to 1, comparable across
   * queries: see the hit's `relevance`) is below it. A chunk that is the only one sharing a word
   * with the query is kept whatever its relevance.
   */
  minRelevance: z.number().min(0).max(1).optional(),
});
export type SearchOptions = z.input<typeof SearchOptionsSchema>;
export type ParsedSearchOptions = z.output<typeof SearchOptionsSchema>;

/**
 * Session search (`sessions.search`): the sessions whose chunks best match a query, found by the
 * chunk search (same filters and ranking knobs, without `k`) and grouped by session; a session
 * ranks by its best chunk. `limit` sessions (default 10), each with up to `hits` chunks (default 3).
 */
export const SessionSearchOptionsSchema = SearchOptionsSchema.omit({ k: true }).extend({
  limit: z.number().int().min(1).max(100).default(10),
  hits: z.number().int().min(1).max(20).default(3),
});
export type SessionSearchOptions = z.input<typeof SessionSearchOptionsSchema>;

/**
 * Parses caller input, turning a zod failure into MEMEX_INVALID_INPUT that names each bad field.
 * An invalid id inside the input is reported as MEMEX_INVALID_ID, the same code a bad id argument gets.
 */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message }));
  const summary = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
  const code = issues.some((i) => /^invalid (UserId|SessionId|MessageId|PersonaId|NoteId|FileId)/.test(i.message))
    ? 'MEMEX_INVALID_ID'
    : 'MEMEX_INVALID_INPUT';
  throw new MemexError(code, `invalid ${what}: ${summary}`, { cause: result.error, details: { issues } });
}

/**
 * One chat turn (`memex.chat`, `POST /v1/chat`): the user's text, the session to continue (a new
 * one when absent), a persona (for a new session: its persona; for an existing one: this turn's),
 * and the model's context length (default `llm.contextTokens`).
 */
export const ChatInputSchema = z.strictObject({
  text: z.string().trim().min(1),
  sessionId: SessionIdSchema.optional(),
  personaId: PersonaIdSchema.nullable().optional(),
  budget: z.number().int().min(64).max(10_000_000).optional(),
  /** Tokens kept free for the reply (default `context.replyTokens`). */
  reserve: z.number().int().min(0).optional(),
  /** The app's own system prompt, put before the persona's instructions. */
  system: z.string().max(100_000).optional(),
});
export type ChatInput = z.input<typeof ChatInputSchema>;

/** A persona named by id or by name (ignoring case), as `--persona` takes it. */
const PersonaRefSchema = z.string().trim().min(1).max(200);

/** A panel: a session with several personas as participants. */
export const NewPanelSchema = z.strictObject({
  personas: z.array(PersonaRefSchema).min(1).max(32),
  title: z.string().trim().min(1).max(500).optional(),
  metadata: MetadataInputSchema.optional(),
});
export type NewPanel = z.input<typeof NewPanelSchema>;

/** A participant's turn in a panel: an assistant message spoken by the persona. */
export const PanelTurnSchema = z.strictObject({ persona: PersonaRefSchema, content: z.string().min(1), metadata: MetadataInputSchema.optional() });
export type PanelTurn = z.input<typeof PanelTurnSchema>;
