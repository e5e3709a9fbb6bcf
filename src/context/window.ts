import {
  ContextOptionsSchema,
  MemexError,
  isMemexError,
  parseInput,
  type ChunkSource,
  type Config,
  type ContextOptionsInput,
  type Message,
  type Note,
  type SessionSummary,
  type Summary,
} from '../core/index.js';
import type { Embedder } from '../embedding/index.js';
import type { RecallSearchOptions, RerankOptions, SearchHit, SearchReport } from '../index/index.js';
import { KeyedMutex, type Store } from '../store/index.js';
import { allocate, PARTS, type Part, type PerPart } from './allocate.js';
import { aroundKey, readAround, type Around, type NeighbourCounts } from './neighbours.js';
import { RecentMessages, type MessageRun } from './recent.js';
import { extendSummary, type SummaryState } from './summary.js';
import { lineOf, renderSummary, SUMMARY_HEADER, type Summarizer } from './summarizer.js';
import { CountCache, OPENAI_CHAT_FORMAT, messageTokens, tiktokenTokenizer, type ChatFormat, type ChatMessage, type Tokenizer } from './tokenizer.js';

export type ContextOptions = ContextOptionsInput & {
  /** Count with this tokenizer instead of a tiktoken encoding (another model family). */
  tokenizer?: Tokenizer;
  /** The chat format's overhead per message (default: OpenAI's, see `OPENAI_CHAT_FORMAT`). */
  format?: ChatFormat;
  signal?: AbortSignal;
} & RerankOptions;

/** Why something the window could have held is not in it. */
export type LeftReason =
  /** It did not fit the part's share of the budget (after what other parts left over). */
  | 'budget'
  /** The caller turned the part off (`include`). */
  | 'excluded'
  /** A recalled chunk of a turn the window already shows (or the same text as one). */
  | 'in-window'
  /** A recalled chunk with the same text as another one kept. */
  | 'duplicate'
  /** The notes file cannot be read; the message says where. */
  | 'unreadable'
  /** Nothing to recall for: no query and no user turn yet. */
  | 'no-query';

export interface LeftOut {
  part: Part | 'persona';
  reason: LeftReason;
  /** A note id, a chunk id, or a message id (the newest of the turns left out). */
  id?: string;
  /** How many things this entry stands for (older turns are one entry). */
  count: number;
  /** What they would have cost, when known. */
  tokens?: number;
  message?: string;
}

/** A recalled piece that made it into the window, with where it came from. */
export interface RecalledMemory {
  sessionId: string;
  chunkId: string;
  source: ChunkSource;
  score: number;
  tokens: number;
  text: string;
  /** Ids of the turns shown with it from around it in its session (`context.neighbours`), oldest first. */
  neighbours: string[];
}

export interface PartReport {
  /** Tokens the part's message costs in the request, chat-format frame included. */
  tokens: number;
  /** Tokens the shares gave it (what it could have used). */
  allotted: number;
  /** Things in it: notes, summary sentences, memories or turns. */
  items: number;
}

export interface ContextReport {
  sessionId: string;
  encoding: string;
  budget: number;
  reserve: number;
  /** The request's tokens: every message with its frame, plus the reply priming. Never above `budget - reserve`. */
  tokens: number;
  format: ChatFormat;
  parts: Record<'system' | Part, PartReport>;
  query: { text: string; from: 'option' | 'latest-user-turn' } | null;
  recent: { messages: number; total: number; fromMessageId: string | null };
  /** What the summary covers in this window: the session's turns before the first recent one. */
  summary: {
    method: Summary['method'];
    coveredMessages: number;
    coversThroughMessageId: string | null;
    /** Messages folded into the stored summary by this call. */
    extended: number;
    restarted: string | null;
    /**
     * What `summary.json` covers: more than `coveredMessages` when an earlier, smaller window left
     * more turns out. An extractive summary hides the sentences of turns this window shows; a
     * model's summary cannot, so those turns also appear summarized.
     */
    stored: number;
    /** The turns whose sentences the window shows (extractive summaries), oldest first. */
    sentencesFrom: string[];
  } | null;
  memories: RecalledMemory[];
  left: LeftOut[];
  ms: number;
}

export interface ContextWindow {
  /** Ready to send: system prompt and persona, notes, memories, summary, then the recent turns in order. */
  messages: ChatMessage[];
  report: ContextReport;
}

export interface ContextManagerDeps {
  store: Store;
  config: Pick<Config, 'context'>;
  summarizer: Summarizer;
  embedder: () => Promise<Embedder>;
  search: (userId: string, query: string, options: RecallSearchOptions) => Promise<SearchReport>;
  /** Told when an extended summary could not be saved (the window was built; the next one extends it again). */
  onSaveFailed?: (sessionId: string, cause: unknown) => void;
}

interface MemoriesPart {
  kept: SearchHit[];
  tokens: number;
  message: ChatMessage | null;
  names: ReadonlyMap<string, string>;
  /** The turns shown around a kept hit; none for most when neighbours are off. */
  around: ReadonlyMap<SearchHit, Around>;
}

interface Turn {
  message: Message;
  chat: ChatMessage;
  tokens: number;
}

export const NOTES_HEADER = 'Notes about the user, kept across conversations:';
export const MEMORIES_HEADER = 'Memories recalled from earlier conversations that may be relevant (oldest first):';

/**
 * Assembles token-budgeted windows: the chat messages to send for a session, fitted to a model's
 * context length. One instance per data dir; it keeps token counts of texts it has seen, and one
 * window per session is assembled at a time (they share the session's stored summary).
 */
export class ContextManager {
  private readonly counts = new CountCache();
  private readonly recentMessages = new RecentMessages();
  private readonly sessions = new KeyedMutex();
  private readonly normalizedTexts = new Map<string, string>();

  constructor(private readonly deps: ContextManagerDeps) {}

  async build(userId: string, input: ContextOptions): Promise<ContextWindow> {
    const { tokenizer: custom, format: customFormat, signal, reranker, rerankCandidates, ...rest } = input;
    // The reranker (and its pool) go to the window's search as they are; no reranker given is the Memex's.
    const rerankOptions: RerankOptions = { ...(reranker !== undefined ? { reranker } : {}), ...(rerankCandidates !== undefined ? { rerankCandidates } : {}) };
    const options = parseInput(ContextOptionsSchema, rest, 'context options');
    const tokenizer = custom ?? tiktokenTokenizer(options.encoding ?? this.deps.config.context.encoding);
    // One window per session at a time: they may extend the same stored summary. The window is
    // handed back before the extended summary is saved (it is derived from the turns: a save that
    // fails costs the next window an extension, never this one); the next window waits for it.
    const built = this.sessions.run(this.key(userId, options.sessionId), async () => {
      const assembled = await this.assemble(userId, options, tokenizer, customFormat ?? OPENAI_CHAT_FORMAT, signal, rerankOptions);
      const saving = assembled.save().catch((cause: unknown) => this.deps.onSaveFailed?.(options.sessionId, cause));
      return { window: assembled.window, saving };
    });
    // The session stays this window's until its summary is saved.
    void this.sessions.run(this.key(userId, options.sessionId), async () => {
      await built.then(({ saving }) => saving, () => undefined);
    });
    return (await built).window;
  }

  /** Resolves when the windows under way for the session (every session, without one) have saved their summaries. */
  async saved(userId?: string, sessionId?: string): Promise<void> {
    if (userId === undefined || sessionId === undefined) await this.sessions.drain();
    else await this.sessions.run(this.key(userId, sessionId), () => Promise.resolve());
  }

  private key(userId: string, sessionId: string): string {
    return `${userId}\u0000${sessionId}`;
  }

  private async assemble(
    userId: string,
    options: ReturnType<typeof ContextOptionsSchema.parse>,
    tokenizer: Tokenizer,
    format: ChatFormat,
    signal: AbortSignal | undefined,
    rerankOptions: RerankOptions,
  ): Promise<{ window: ContextWindow; save: () => Promise<void> }> {
    const started = performance.now();
    const { store, config } = this.deps;
    const settings = config.context;
    const include = { persona: true, notes: true, summary: true, memories: true, recent: true, ...options.include };
    const count = (text: string): number => this.counts.count(tokenizer, text);
    // A text that fits (its count remembered) is its own truncation: no encoding, no decoding.
    const counting: Tokenizer = { encoding: tokenizer.encoding, count, truncate: (text, max) => (count(text) <= max ? text : tokenizer.truncate(text, max)) };
    const cost = (message: ChatMessage): number => messageTokens(count, message, format);
    const sessionId = options.sessionId;
    const session = await store.getSession(userId, sessionId);
    if (session.trashedAt !== null) throw new MemexError('MEMEX_SESSION_TRASHED', `session ${sessionId} is in the trash; restore it first`, { details: { sessionId } });
    const reserve = options.reserve ?? settings.replyTokens;
    const limit = options.budget - reserve - format.replyPriming;
    const left: LeftOut[] = [];
    const abort = (): void => {
      if (signal?.aborted) throw new MemexError('MEMEX_ABORTED', 'building the context window was cancelled', { cause: signal.reason });
    };

    // ---- the system prompt and persona: always first, never cut
    // A panel's participant speaks as its own persona (panels: memex.ts `panels`).
    const panel = options.participant !== undefined ? await panelView(store, userId, session, options.participant) : null;
    const personaId = panel ? panel.personaId : options.personaId !== undefined ? options.personaId : session.personaId;
    const persona = include.persona && personaId ? await store.getPersona(userId, personaId) : null;
    if (!include.persona && session.personaId) left.push({ part: 'persona', reason: 'excluded', id: session.personaId, count: 1 });
    const systemText = [options.system, persona?.instructions].filter((t): t is string => t !== undefined && t.trim().length > 0).join('\n\n');
    const system: ChatMessage | null = systemText ? { role: 'system', content: systemText } : null;
    const systemTokens = system ? cost(system) : 0;
    if (limit <= 0) {
      throw new MemexError(
        'MEMEX_CONTEXT_BUDGET_TOO_SMALL',
        `a budget of ${options.budget} tokens is used up by the ${reserve}-token reply reserve and the ${format.replyPriming}-token reply priming; raise the budget or lower the reserve`,
        { details: { budget: options.budget, reserve, available: 0, systemTokens } },
      );
    }
    if (limit < systemTokens) {
      throw new MemexError(
        'MEMEX_CONTEXT_BUDGET_TOO_SMALL',
        `a budget of ${options.budget} tokens leaves ${Math.max(0, limit)} after the ${reserve}-token reply reserve and the ${format.replyPriming}-token reply priming; the system prompt and persona alone need ${systemTokens}`,
        { details: { budget: options.budget, reserve, available: Math.max(0, limit), systemTokens } },
      );
    }
    const room = limit - systemTokens;

    // ---- what each part could use
    const tail = new TurnReader(store, this.recentMessages, userId, sessionId, (message) => {
      const chat = panel ? panel.toChat(message) : toChat(message);
      return { message, chat, tokens: cost(chat) };
    });
    const total = await tail.total();
    const fitting = include.recent ? await tail.within(room) : [];
    const latest = fitting[0];
    if (latest && latest.tokens > room) {
      throw new MemexError(
        'MEMEX_CONTEXT_BUDGET_TOO_SMALL',
        `the latest turn needs ${latest.tokens} tokens, but the budget leaves ${room} after the reply reserve and the system prompt`,
        { details: { budget: options.budget, reserve, available: room, latestTurnTokens: latest.tokens, messageId: latest.message.id } },
      );
    }
    const olderExist = include.recent ? fitting.length < total : total > 0;
    // When older turns exist, recent could use all the room.
    const recentDemand = olderExist && include.recent ? room : fitting.reduce((s, t) => s + t.tokens, 0);

    let notes: Note[] = [];
    if (include.notes) {
      try {
        notes = sortNotes((await store.listNotes(userId)).filter((note) => ownNote(note, personaId)));
      } catch (cause) {
        if (!isMemexError(cause, 'MEMEX_USER_CORRUPT')) throw cause;
        left.push({ part: 'notes', reason: 'unreadable', count: 1, message: cause.message });
      }
    } else left.push({ part: 'notes', reason: 'excluded', count: 1 });

    const k = options.memories ?? settings.memories;
    const neighbours: NeighbourCounts = {
      before: options.neighbours?.before ?? settings.neighbours.before,
      after: options.neighbours?.after ?? settings.neighbours.after,
    };
    let query: ContextReport['query'] = null;
    let hits: SearchHit[] = [];
    if (include.memories && k > 0) {
      const latestUser = options.query ? null : await tail.latestUserTurn();
      query = options.query ? { text: options.query, from: 'option' } : latestUser ? { text: latestUser.content.slice(0, 10_000), from: 'latest-user-turn' } : null;
      if (query) {
        abort();
        // Chunks of turns the window shows come back too: ask for more (at most twice `k`) to keep `k` after them.
        const minScore = options.minScore !== undefined ? options.minScore : settings.minScore;
        const minRelevance = options.minRelevance !== undefined ? options.minRelevance : settings.minRelevance;
        const floors = { ...(minScore !== null ? { minScore } : {}), ...(minRelevance !== null ? { minRelevance } : {}) };
        hits = (await this.deps.search(userId, query.text, { k: k + Math.min(k, fitting.length), ...floors, ...rerankOptions })).hits;
      } else left.push({ part: 'memories', reason: 'no-query', count: 1 });
    } else left.push({ part: 'memories', reason: 'excluded', count: 1 });
    if (!include.summary) left.push({ part: 'summary', reason: 'excluded', count: 1 });
    if (!include.recent && total > 0) left.push({ part: 'recent', reason: 'excluded', count: total });

    const weights: PerPart = { ...settings.shares };
    for (const part of PARTS) weights[part] = options.shares?.[part] ?? weights[part];
    const demand: PerPart = {
      notes: notes.length > 0 ? cost({ role: 'system', content: renderNotes(notes) }) : 0,
      // Each neighbour makes a memory about one turn longer: asking for that much more keeps a small
      // recall from being squeezed by a demand that counted bare hits only.
      memories: hits.length > 0 ? cost({ role: 'system', content: renderMemories(hits.slice(0, k), new Map(), NO_AROUND) }) * (1 + neighbours.before + neighbours.after) : 0,
      recent: recentDemand,
      summary: 0,
    };
    let allotted = allocate(room, weights, demand);
    if (include.summary && olderExist) {
      allotted = allocate(room, weights, { ...demand, summary: settings.summaryTokens + format.perMessage + 2 });
    }

    // ---- fill the parts in turn. Each may use its allotment plus what earlier parts left unused
    // (less what they overdrew: the latest turn always fits). Allotments sum to at most `room`, so
    // neither can the parts.
    let spent = 0;
    let promised = 0;
    const roomFor = (part: Part): number => Math.max(0, promised + allotted[part] - spent);
    const latestTokens = latest?.tokens ?? 0;
    // Notes give way to the latest turn first.
    let notesPart = fitLines(notes, Math.min(roomFor('notes'), room - latestTokens), { line: noteLine, render: renderNotes, cost, count });
    spent += notesPart.tokens;
    promised += allotted.notes;

    const recent = takeNewest(fitting, Math.max(roomFor('recent'), latestTokens));
    spent += recent.tokens;
    promised += allotted.recent;
    const windowIds = new Set<string>(recent.turns.map((t) => t.message.id));

    abort();
    const memoriesPart = await this.fitMemories(userId, sessionId, hits, k, neighbours, recent.turns, roomFor('memories'), cost, count, left);
    spent += memoriesPart.tokens;
    promised += allotted.memories;

    // Older turns take what neither memories nor the summary's share will use, before the summary
    // is extended: so it is extended to the turns this window leaves out, and no further.
    const summaryRoom = include.summary ? roomFor('summary') : 0;
    const older = async (limit: number): Promise<number> => {
      let added = 0;
      for (let turn = await tail.at(recent.turns.length); include.recent && turn && spent + turn.tokens <= limit; turn = await tail.at(recent.turns.length)) {
        recent.turns.push(turn);
        recent.tokens += turn.tokens;
        spent += turn.tokens;
        windowIds.add(turn.message.id);
        added++;
      }
      return added;
    };
    let memoriesKept = memoriesPart;
    const dropShownMemories = (): void => {
      spent -= memoriesKept.tokens;
      memoriesKept = this.withoutShown(memoriesKept, sessionId, windowIds, cost);
      spent += memoriesKept.tokens;
    };
    if ((await older(room - summaryRoom)) > 0) dropShownMemories();

    const summaryDeps = { store, summarizer: this.deps.summarizer, embedder: this.deps.embedder, maxTokens: settings.summaryTokens };
    const extendedTo = total - recent.turns.length;
    const summaryState: SummaryState | null = include.summary && extendedTo > 0 ? await extendSummary(summaryDeps, userId, sessionId, extendedTo, counting, signal) : null;
    const fitSummaryInto = (summaryLimit: number): ReturnType<typeof fitSummary> =>
      fitSummary(summaryState?.summary ?? null, summaryLimit, windowIds, new Set(memoriesKept.kept.flatMap((hit) => [...(messageIdOf(hit) ?? []), ...aroundIds(memoriesKept.around.get(hit), hit.sessionId, sessionId)])), cost, count, tokenizer);
    let summaryPart = fitSummaryInto(summaryRoom);
    spent += summaryPart.tokens;

    // A summary shorter than its share leaves room for more turns.
    if ((await older(room)) > 0) {
      spent -= summaryPart.tokens;
      // Memories of turns now shown go. The summary keeps what it covers, a turn or two further than
      // the window now leaves out: it shows no sentence of a shown turn (fitSummary), and extending it
      // again to exactly the turns left out would cost a second extension per window (the report says
      // how far it is stored).
      dropShownMemories();
      summaryPart = fitSummaryInto(Math.min(summaryRoom, room - spent));
      spent += summaryPart.tokens;
    }
    // Notes were fitted first, to their share alone: what is still free goes to those left out.
    if (notesPart.dropped.length > 0 && spent < room) {
      const wider = fitLines(notes, notesPart.tokens + room - spent, { line: noteLine, render: renderNotes, cost, count });
      spent += wider.tokens - notesPart.tokens;
      notesPart = wider;
    }
    for (const note of notesPart.dropped) left.push({ part: 'notes', reason: 'budget', id: note.id, count: 1 });
    const firstShown = total - recent.turns.length;
    const newestLeft = firstShown > 0 ? await tail.at(recent.turns.length) : null;
    if (firstShown > 0 && include.recent) {
      left.push({ part: 'recent', reason: 'budget', count: firstShown, ...(newestLeft ? { id: newestLeft.message.id } : {}) });
    }

    // ---- the request, in order
    const messages: ChatMessage[] = [];
    if (system) messages.push(system);
    if (notesPart.message) messages.push(notesPart.message);
    if (memoriesKept.message) messages.push(memoriesKept.message);
    if (summaryPart.message) messages.push(summaryPart.message);
    const turns = [...recent.turns].reverse();
    messages.push(...turns.map((t) => t.chat));
    const tokens = messages.reduce((s, m) => s + cost(m), format.replyPriming);
    if (tokens > options.budget - reserve) {
      throw new MemexError('MEMEX_INTERNAL', `the assembled window has ${tokens} tokens, over the ${options.budget - reserve} allowed`);
    }
    if (summaryPart.dropped > 0) left.push({ part: 'summary', reason: 'budget', count: summaryPart.dropped });

    const summary = summaryState?.summary;
    const report: ContextReport = {
      sessionId,
      encoding: tokenizer.encoding,
      budget: options.budget,
      reserve,
      tokens,
      format,
      parts: {
        system: { tokens: systemTokens, allotted: systemTokens, items: system ? 1 : 0 },
        notes: { tokens: notesPart.tokens, allotted: allotted.notes, items: notesPart.kept.length },
        memories: { tokens: memoriesKept.tokens, allotted: allotted.memories, items: memoriesKept.kept.length },
        summary: { tokens: summaryPart.tokens, allotted: allotted.summary, items: summaryPart.items },
        recent: { tokens: recent.tokens, allotted: allotted.recent, items: recent.turns.length },
      },
      query,
      recent: { messages: recent.turns.length, total, fromMessageId: turns[0]?.message.id ?? null },
      summary:
        summary && summaryState && firstShown > 0
          ? {
              method: summary.method,
              coveredMessages: firstShown,
              coversThroughMessageId: newestLeft?.message.id ?? null,
              stored: summary.coveredMessages,
              sentencesFrom: summaryPart.from,
              extended: summaryState.extended,
              restarted: summaryState.restarted,
            }
          : null,
      memories: memoriesKept.kept.map((hit) => ({
        sessionId: hit.sessionId,
        chunkId: hit.chunkId,
        source: hit.source,
        score: hit.score,
        tokens: count(memoryLine(hit, memoriesKept.names, memoriesKept.around)),
        text: hit.text,
        neighbours: aroundIds(memoriesKept.around.get(hit), hit.sessionId, hit.sessionId),
      })),
      left,
      ms: Math.round((performance.now() - started) * 100) / 100,
    };
    // The next window of a growing session leaves out the turns this one shows oldest (a chat's next
    // exchange pushes out about as many tokens as its latest one holds): the summary is extended to
    // them now, after this window is handed back, so that the next one finds it already covering them
    // instead of extending it on its way; the turns it covers that a window shows, it hides
    // (fitSummary). Counted from where this window extended it, so asking again extends nothing.
    const ahead = summaryState ? turnsAhead(recent.turns, extendedTo - firstShown) : 0;
    return {
      window: { messages, report },
      save: async () => {
        await summaryState?.commit();
        if (ahead > 0) await (await extendSummary(summaryDeps, userId, sessionId, extendedTo + ahead, counting)).commit();
      },
    };
  }

  /**
   * Recalled chunks, best first, that are not already in the window, fitted to `room`: a chunk of
   * a turn the window shows, or whose text a shown turn contains, is left out as `in-window`; one
   * whose text repeats a kept memory as `duplicate`. Shown oldest first, each with its date.
   */
  private async fitMemories(
    userId: string,
    sessionId: string,
    hits: readonly SearchHit[],
    k: number,
    neighbours: NeighbourCounts,
    turns: readonly Turn[],
    room: number,
    cost: (m: ChatMessage) => number,
    count: (text: string) => number,
    left: LeftOut[],
  ): Promise<MemoriesPart> {
    const inWindow = new Set<string>(turns.map((t) => t.message.id));
    const seen = new Set<string>();
    const fresh: SearchHit[] = [];
    const shown = turns.map((t) => this.normalized(t.message.content));
    let already = 0;
    for (const hit of hits) {
      const messageId = messageIdOf(hit);
      const text = normalize(hit.text);
      if ((messageId !== undefined && inWindow.has(messageId)) || shown.some((content) => content.includes(text))) {
        already++;
      } else if (seen.has(text)) {
        left.push({ part: 'memories', reason: 'duplicate', id: hit.chunkId, count: 1 });
      } else if (fresh.length < k) {
        seen.add(text);
        fresh.push(hit);
      }
    }
    const around = await this.neighbours(userId, sessionId, fresh, neighbours, inWindow, shown);
    if (already > 0) left.push({ part: 'memories', reason: 'in-window', count: already });
    const names = await this.fileNames(userId, fresh);
    const fitted = fitLines(fresh, room, {
      line: (hit) => memoryLine(hit, names, around),
      render: (kept) => renderMemories(kept, names, around),
      cost,
      count,
    });
    for (const hit of fitted.dropped) left.push({ part: 'memories', reason: 'budget', id: hit.chunkId, count: 1 });
    return { kept: fitted.kept, tokens: fitted.tokens, message: fitted.message, names, around };
  }

  /**
   * The turns around each recalled chat turn, best hit first: a turn the window shows, another hit's
   * own turn (it is a memory of its own, next to this one in time order) or one a better memory
   * already shows is not shown again. Empty when neighbours are off: the window is as before.
   */
  private async neighbours(
    userId: string,
    sessionId: string,
    fresh: readonly SearchHit[],
    counts: NeighbourCounts,
    inWindow: ReadonlySet<string>,
    shown: readonly string[],
  ): Promise<Map<SearchHit, Around>> {
    const out = new Map<SearchHit, Around>();
    if (counts.before + counts.after === 0 || fresh.length === 0) return out;
    const turns = fresh.flatMap((hit) => (hit.source.kind === 'message' ? [{ sessionId: hit.sessionId, messageId: hit.source.messageId }] : []));
    const read = await readAround(this.deps.store, userId, turns, counts);
    const claimed = new Set<string>([...inWindow].map((id) => aroundKey(sessionId, id)));
    // A hit's own turn is claimed first, so a neighbour never repeats a memory of its own.
    for (const hit of fresh) if (hit.source.kind === 'message') claimed.add(aroundKey(hit.sessionId, hit.source.messageId));
    for (const hit of fresh) {
      if (hit.source.kind !== 'message') continue;
      const found = read.get(aroundKey(hit.sessionId, hit.source.messageId));
      if (!found) continue;
      const take = (messages: readonly Message[]): Message[] =>
        messages.filter((message) => {
          const id = aroundKey(hit.sessionId, message.id);
          if (claimed.has(id) || message.content.trim().length === 0) return false;
          // The same words as a turn the window shows (a copy in another session) are not repeated either.
          if (shown.some((content) => content.includes(this.normalized(message.content)))) return false;
          claimed.add(id);
          return true;
        });
      out.set(hit, { before: take(found.before), after: take(found.after) });
    }
    return out;
  }

  /** The kept memories less those of turns the window now shows (it only shrinks, so it still fits). */
  private withoutShown(part: MemoriesPart, sessionId: string, windowIds: ReadonlySet<string>, cost: (m: ChatMessage) => number): MemoriesPart {
    const kept = part.kept.filter((hit) => !windowIds.has(messageIdOf(hit) ?? ''));
    const around = new Map<SearchHit, Around>();
    let trimmed = false;
    for (const hit of kept) {
      const entry = part.around.get(hit);
      if (!entry) continue;
      const visible = (m: Message): boolean => hit.sessionId !== sessionId || !windowIds.has(m.id);
      const next = { before: entry.before.filter(visible), after: entry.after.filter(visible) };
      // An entry left whole stays the same object, so its rendered line is reused (memoryLines).
      const changed = next.before.length !== entry.before.length || next.after.length !== entry.after.length;
      trimmed ||= changed;
      around.set(hit, changed ? next : entry);
    }
    if (kept.length === part.kept.length && !trimmed) return part;
    const message = kept.length > 0 ? { role: 'system' as const, content: renderMemories(kept, part.names, around) } : null;
    return { ...part, kept, around, message, tokens: message ? cost(message) : 0 };
  }

  /** `normalize(text)`, remembered: a window compares its memories with the same recent turns every turn. */
  private normalized(text: string): string {
    const known = this.normalizedTexts.get(text);
    if (known !== undefined) return known;
    const value = normalize(text);
    if (text.length > 4000) return value; // a bounded cache: long texts are rare and would fill it
    if (this.normalizedTexts.size >= 10_000) this.normalizedTexts.delete(this.normalizedTexts.keys().next().value as string);
    this.normalizedTexts.set(text, value);
    return value;
  }

  /** File chunks are shown with their file's name. */
  private async fileNames(userId: string, hits: readonly SearchHit[]): Promise<ReadonlyMap<string, string>> {
    const names = new Map<string, string>();
    for (const hit of hits) {
      if (hit.source.kind !== 'file' || names.has(hit.source.fileId)) continue;
      const record = await this.deps.store.getFile(userId, hit.sessionId, hit.source.fileId).catch(() => null);
      names.set(hit.source.fileId, record?.name || 'a file');
    }
    return names;
  }
}

/** Reads a session's turns newest first, a page at a time, costing each once. */
class TurnReader {
  private readonly newestFirst: Turn[] = [];
  private read: { total: number; run: MessageRun } | null = null;

  constructor(
    private readonly store: Store,
    private readonly recentMessages: RecentMessages,
    private readonly userId: string,
    private readonly sessionId: string,
    private readonly turn: (message: Message) => Turn,
  ) {}

  async total(): Promise<number> {
    return (await this.opened()).total;
  }

  private async opened(): Promise<{ total: number; run: MessageRun }> {
    this.read ??= await this.recentMessages.newest(this.store, this.userId, this.sessionId);
    return this.read;
  }

  /** The newest turns while they fit in `room` together (the latest one even when it alone does not). */
  async within(room: number): Promise<Turn[]> {
    const out: Turn[] = [];
    let used = 0;
    for (let turn = await this.at(0); turn && (out.length === 0 || used + turn.tokens <= room); turn = await this.at(out.length)) {
      used += turn.tokens;
      out.push(turn);
    }
    return out;
  }

  /** The `i`-th newest turn (0 is the latest), or null past the oldest. */
  async at(i: number): Promise<Turn | null> {
    const { total, run } = await this.opened();
    while (this.newestFirst.length <= i && this.newestFirst.length < total) {
      const position = total - 1 - this.newestFirst.length;
      if (position < run.from) {
        if (!(await this.recentMessages.older(this.store, this.userId, this.sessionId, run))) break;
        continue;
      }
      this.newestFirst.push(this.turn(run.messages[position - run.from] as Message));
    }
    return this.newestFirst[i] ?? null;
  }

  async latestUserTurn(): Promise<Message | null> {
    for (let i = 0; i < 200; i++) {
      const turn = await this.at(i);
      if (!turn) return null;
      if (turn.message.role === 'user' && turn.message.content.trim().length > 0) return turn.message;
    }
    return null;
  }
}

/**
 * The metadata key that makes a note one persona's own: windows for that persona include it, others
 * do not. Notes without it are the user's, in every window.
 */
export const NOTE_PERSONA_KEY = 'personaId';

function ownNote(note: Note, personaId: string | null): boolean {
  const owner = note.metadata[NOTE_PERSONA_KEY];
  return typeof owner !== 'string' || owner === personaId;
}

/**
 * How a panel looks to one participant: its persona, its own turns as the assistant's, and the other
 * participants' turns as user turns that start with the speaker's name (`[Name] ...`), since a
 * model reads every assistant turn as its own. User turns and assistant turns that name no persona
 * are shown as they are. MEMEX_INVALID_INPUT when the persona is not one of the session's participants.
 */
async function panelView(store: Store, userId: string, session: SessionSummary, participant: string): Promise<{ personaId: string; toChat: (message: Message) => ChatMessage }> {
  if (!session.participants.includes(participant as SessionSummary['participants'][number])) {
    throw new MemexError('MEMEX_INVALID_INPUT', `persona ${participant} is not a participant of session ${session.id}`, { details: { personaId: participant, participants: session.participants } });
  }
  const names = new Map<string, string>();
  for (const personaId of session.participants) {
    // A deleted persona's turns stay; they are labelled by id.
    names.set(personaId, await store.getPersona(userId, personaId).then((p) => p.name, () => personaId));
  }
  return {
    personaId: participant,
    toChat: (message) => {
      if (message.role !== 'assistant' || message.personaId === undefined || message.personaId === participant) return toChat(message);
      const name = names.get(message.personaId) ?? message.personaId;
      const text = message.content;
      return { role: 'user', content: `[${name}] ${text}` };
    },
  };
}

/** A stored turn in the OpenAI chat shape: its content parts as sent, its name, tool calls and the call a tool result answers. */
function toChat(message: Message): ChatMessage {
  const content = message.parts ?? message.content;
  const name = message.name !== undefined ? { name: message.name } : {};
  if (message.role === 'tool') return { role: 'tool', content, ...name, ...(message.toolCallId ? { tool_call_id: message.toolCallId } : {}) };
  if (message.role === 'assistant' && message.toolCalls) {
    // OpenAI's shape for a turn that only calls tools: null content.
    return { role: 'assistant', content: content === '' ? null : content, ...name, tool_calls: message.toolCalls };
  }
  return { role: message.role, content, ...name };
}

/** The newest turns, contiguous, within `room` (the first one always, checked to fit by the caller). */
function takeNewest(candidates: readonly Turn[], room: number): { turns: Turn[]; tokens: number } {
  const turns: Turn[] = [];
  let tokens = 0;
  for (const turn of candidates) {
    if (tokens + turn.tokens > room) break;
    turns.push(turn);
    tokens += turn.tokens;
  }
  return { turns, tokens };
}

function sortNotes(notes: readonly Note[]): Note[] {
  // Pinned first; within each, the newest first: a recent preference outranks an old one.
  return [...notes].sort((a, b) => Number(b.pinned) - Number(a.pinned) || compareText(b.updatedAt, a.updatedAt));
}

function noteLine(note: Note): string {
  return `- ${note.kind === 'note' ? '' : `(${note.kind}) `}${note.text}`;
}

function renderNotes(notes: readonly Note[]): string {
  return [NOTES_HEADER, ...notes.map(noteLine)].join('\n');
}

/** Each hit's line, made once per set of file names and neighbours: a window renders and counts its memories several times while fitting them. */
const memoryLines = new WeakMap<SearchHit, { names: ReadonlyMap<string, string>; around: Around | undefined; line: string }>();
const NO_AROUND: ReadonlyMap<SearchHit, Around> = new Map();
/**
 * A neighbour is context, not the match: a long one is cut to this many characters (about 200
 * tokens), so one essay-length turn cannot take the memories' share from the hits themselves.
 */
const NEIGHBOUR_CHARS = 800;

function memoryLine(hit: SearchHit, names: ReadonlyMap<string, string>, around: ReadonlyMap<SearchHit, Around>): string {
  const entry = around.get(hit);
  const known = memoryLines.get(hit);
  if (known?.names === names && known.around === entry) return known.line;
  const text = hit.text.replace(/\s+/g, ' ').trim();
  let line: string;
  if (hit.source.kind === 'file') line = `- [${names.get(hit.source.fileId) ?? 'a file'}${hit.source.page ? `, page ${hit.source.page}` : ''}] ${text}`;
  else if (!entry || entry.before.length + entry.after.length === 0) line = `- [${hit.source.createdAt.slice(0, 10)}] ${hit.source.role}: ${text}`;
  else {
    // One memory, the exchange in order: continuation lines are indented under the first.
    const turn = (m: Message): string => `[${m.createdAt.slice(0, 10)}] ${m.role}: ${cut(m.content.replace(/\s+/g, ' ').trim())}`;
    const lines = [...entry.before.map(turn), `[${hit.source.createdAt.slice(0, 10)}] ${hit.source.role}: ${text}`, ...entry.after.map(turn)];
    line = lines.map((l, i) => (i === 0 ? `- ${l}` : `  ${l}`)).join('\n');
  }
  memoryLines.set(hit, { names, around: entry, line });
  return line;
}

function cut(text: string): string {
  return text.length <= NEIGHBOUR_CHARS ? text : `${text.slice(0, NEIGHBOUR_CHARS - 1)}\u2026`;
}

/** The ids of the turns shown around a hit, oldest first; none when it is of another session than `sessionId`. */
function aroundIds(entry: Around | undefined, hitSession: string, sessionId: string): string[] {
  return entry && hitSession === sessionId ? [...entry.before, ...entry.after].map((m) => m.id) : [];
}

function renderMemories(hits: readonly SearchHit[], names: ReadonlyMap<string, string>, around: ReadonlyMap<SearchHit, Around>): string {
  // ISO times order as plain strings; localeCompare's collation was a visible share of a window's time.
  const ordered = [...hits].sort((a, b) => compareText(timeOf(a), timeOf(b)));
  return [MEMORIES_HEADER, ...ordered.map((hit) => memoryLine(hit, names, around))].join('\n');
}

function messageIdOf(hit: SearchHit): string | undefined {
  return hit.source.messageId;
}

/**
 * Fits lines under a header, as one system message, into `room` tokens. Lines are taken in the
 * order given (their priority) while their estimated cost fits (a line's tokens plus one for its
 * line break: counting each candidate message whole would be quadratic); then the exact count of
 * the rendered message is checked and the lowest-priority lines go until it fits.
 */
function fitLines<T>(
  items: readonly T[],
  room: number,
  how: { line: (item: T) => string; render: (kept: readonly T[]) => string; cost: (m: ChatMessage) => number; count: (text: string) => number },
): { kept: T[]; dropped: T[]; tokens: number; message: ChatMessage | null } {
  if (items.length > 0) {
    // Everything at once is the common case, and one exact count.
    const message: ChatMessage = { role: 'system', content: how.render(items) };
    const tokens = how.cost(message);
    if (tokens <= room) return { kept: [...items], dropped: [], tokens, message };
  }
  const kept: T[] = [];
  const dropped: T[] = [];
  const lineTokens = new Map<T, number>();
  let estimate = how.cost({ role: 'system', content: how.render([]) });
  for (const item of items) {
    const tokens = how.count(`\n${how.line(item)}`);
    lineTokens.set(item, tokens);
    if (estimate + tokens <= room) {
      kept.push(item);
      estimate += tokens;
    } else dropped.push(item);
  }
  for (;;) {
    const message: ChatMessage = { role: 'system', content: how.render(kept) };
    const tokens = kept.length > 0 ? how.cost(message) : 0;
    if (tokens <= room) {
      // The estimate may have been cautious: the next dropped line or two may fit, counted exactly.
      for (const item of dropped.slice(0, 2)) {
        const candidate = [...kept, item];
        const exact = how.cost({ role: 'system', content: how.render(candidate) });
        if (exact <= room) {
          dropped.splice(dropped.indexOf(item), 1);
          return { kept: candidate, dropped, tokens: exact, message: { role: 'system', content: how.render(candidate) } };
        }
      }
      return kept.length > 0 ? { kept, dropped, tokens, message } : { kept, dropped, tokens: 0, message: null };
    }
    // Over by `excess`: drop the lowest-priority lines that cover it (usually one recount).
    let excess = tokens - room;
    while (excess > 0 && kept.length > 0) {
      const last = kept.pop() as T;
      dropped.unshift(last);
      excess -= lineTokens.get(last) ?? 1;
    }
  }
}

function timeOf(hit: SearchHit): string {
  return hit.source.kind === 'message' ? hit.source.createdAt : '';
}

/**
 * The stored summary as this window shows it: without sentences of turns the window shows (or a
 * kept memory quotes), then the most central sentences that fit `room`, in conversation order.
 */
function fitSummary(
  summary: Summary | null,
  room: number,
  windowIds: ReadonlySet<string>,
  memoryMessages: ReadonlySet<string>,
  cost: (m: ChatMessage) => number,
  count: (text: string) => number,
  tokenizer: Tokenizer,
): { message: ChatMessage | null; tokens: number; items: number; dropped: number; from: string[] } {
  if (!summary) return { message: null, tokens: 0, items: 0, dropped: 0, from: [] };
  if (!summary.items) {
    // A model's summary is one text: shown whole, or cut to fit.
    const text = tokenizer.truncate(summary.text, Math.max(0, room - cost({ role: 'system', content: '' })));
    const message = text ? { role: 'system' as const, content: text } : null;
    return { message, tokens: message ? cost(message) : 0, items: message ? 1 : 0, dropped: message ? 0 : 1, from: [] };
  }
  const visible = summary.items.filter((item) => !windowIds.has(item.messageId) && !memoryMessages.has(item.messageId));
  const order = new Map(visible.map((item, i) => [item, i]));
  const fitted = fitLines(
    [...visible].sort((a, b) => b.score - a.score),
    room,
    {
      // A day heading may come with the line: count it, so the estimate rarely runs over.
      line: (item) => `${item.createdAt.slice(0, 10)}:\n${lineOf(item)}`,
      render: (kept) => (kept.length === 0 ? SUMMARY_HEADER : renderSummary([...kept].sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0)))),
      cost,
      count,
    },
  );
  return { message: fitted.message, tokens: fitted.tokens, items: fitted.kept.length, dropped: fitted.dropped.length, from: [...new Set(visible.filter((item) => fitted.kept.includes(item)).map((item) => item.messageId))] };
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function normalize(text: string): string {
  return text.replace(/\s+/g, ' ').trim().toLowerCase();
}

/**
 * How many more of the shown turns (`shown` newest first, past the oldest `skip` of them) the next
 * exchange will likely push out of the window: as many as hold the tokens of the latest two turns,
 * never the latest two themselves.
 */
function turnsAhead(shown: readonly Turn[], skip: number): number {
  const incoming = (shown[0]?.tokens ?? 0) + (shown[1]?.tokens ?? 0);
  let ahead = 0;
  let tokens = 0;
  for (let i = shown.length - 1 - Math.max(0, skip); i >= 2 && tokens < incoming; i--) {
    tokens += (shown[i] as Turn).tokens;
    ahead++;
  }
  return ahead;
}
