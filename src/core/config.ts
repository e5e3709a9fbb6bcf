import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { MemexError } from './errors.js';

/**
 * Configuration, parsed once with defaults, then frozen. Sources, later ones winning:
 * defaults < config file (`MEMEX_CONFIG`, else `./memex.config.json` when present) < environment
 * (`MEMEX_DATA_DIR`, `MEMEX_FSYNC`, `MEMEX_LOCK_TIMEOUT_MS`, `MEMEX_HOST`, `MEMEX_PORT`, `MEMEX_MODEL`, `MEMEX_MODEL_DIR`,
 * `MEMEX_MODEL_CACHE`, `MEMEX_OFFLINE`, `MEMEX_LLM_BASE_URL`, `MEMEX_LLM_MODEL`, `MEMEX_LLM_API_KEY`) < explicit
 * overrides (CLI flags, library options). The LLM API key comes only from the environment or an
 * override, never from the file.
 */
export const DEFAULT_MODEL = 'Xenova/all-MiniLM-L6-v2';
/** The built-in fallback: hashed words, no model files. `MEMEX_MODEL=hashed` picks it on purpose. */
export const HASHED_MODEL = 'memex/hashed-lexical-v1';
export const FSYNC_POLICIES = ['always', 'group', 'none'] as const;
export type FsyncPolicy = (typeof FSYNC_POLICIES)[number];
/** The tiktoken encodings context windows can be counted in. */
export const TOKEN_ENCODINGS = ['cl100k_base', 'o200k_base'] as const;
export type TokenEncoding = (typeof TOKEN_ENCODINGS)[number];

/** At most `max` events (default given) in each window of `windowMs`. */
function windowLimit(max: number) {
  return z
    .strictObject({
      max: z.number().int().min(1).max(1_000_000).default(max),
      windowMs: z.number().int().min(1000).max(86_400_000).default(60_000),
    })
    .prefault({});
}

/**
 * Turns a recalled turn brings from before and after it (see `context.neighbours`). Off: on LoCoMo
 * `after: 1` gained 0.5 and 1.8 points of evidence at 2k and 4k, but on Multi-Session Chat it lost
 * 0.5 points at 2k (99.7% to 99.2%) and gained nothing at 4k, and a default must not hurt either
 * set (bench/context.ts; the table is in the README's context-window section).
 */
const NEIGHBOURS_BEFORE = 0;
const NEIGHBOURS_AFTER = 0;

export const RETENTION_ACTIONS = ['archive', 'trash'] as const;
export type RetentionAction = (typeof RETENTION_ACTIONS)[number];

/** One retention policy: a limit and what to do past it; null (the default) leaves it off. */
function retentionRule(max: number) {
  return z.strictObject({ limit: z.number().int().min(1).max(max), action: z.enum(RETENTION_ACTIONS) }).nullable().default(null);
}

export const ConfigSchema = z.strictObject({
  /** Where the flat-file store keeps everything. Relative paths resolve against the working directory. */
  dataDir: z.string().min(1).default('./memex-data'),
  /**
   * Which backend keeps the data: `flat` (default), the files under `dataDir`, owned by one process;
   * or `postgres`, PostgreSQL with pgvector at `url`, shared by any number of service instances
   * (`MEMEX_DATABASE_URL` or `--database-url` select it). `dataDir` then only holds local files:
   * the CLI's server announcement and reindex progress.
   */
  store: z
    .strictObject({
      kind: z.enum(['flat', 'postgres']).default('flat'),
      /** postgres://user:password@host:port/database */
      url: z.string().min(1).nullable().default(null),
      /** Connections in each process's pool. */
      maxConnections: z.number().int().min(1).max(1000).default(10),
    })
    .refine((store) => store.kind !== 'postgres' || store.url !== null, { message: 'store.kind "postgres" needs store.url (or MEMEX_DATABASE_URL)', path: ['url'] })
    .prefault({}),
  /**
   * When appended messages and written JSON reach the disk (see README "Durability"):
   * - `always`: every write is fsynced before its promise resolves; one fsync per write.
   * - `group` (default): the same promise as `always` (a resolved append survives power loss), but
   *   concurrent appends to one file share an fsync, so many writers cost about one fsync each round.
   * - `none`: never fsync; a resolved write survives a crash of the process, not of the machine.
   */
  fsync: z.enum(FSYNC_POLICIES).default('group'),
  /**
   * How long opening a data dir waits for another process's lock before MEMEX_DATA_DIR_LOCKED.
   * Short CLI commands take turns inside this window; a long-running server makes others fail fast after it.
   */
  lockTimeoutMs: z.number().int().min(0).max(600_000).default(5_000),
  embedding: z
    .strictObject({
      /**
       * The transformers.js model id. Without `modelDir` it loads from the cache (`cacheDir`),
       * downloading once from the Hugging Face hub when `allowRemote` is on. `hashed` (or
       * `memex/hashed-lexical-v1`) picks the built-in hashed lexical embedder.
       */
      model: z.string().min(1).default(DEFAULT_MODEL),
      /**
       * A local folder in transformers.js layout: either the folder holding `<model>/config.json`
       * (like `../shared/models`) or the model folder itself. When set, nothing is fetched.
       */
      modelDir: z.string().min(1).nullable().default(null),
      /** Where downloaded models are kept; default `~/.cache/memex/models`. */
      cacheDir: z.string().min(1).nullable().default(null),
      /** Download a missing model from the hub. Off with MEMEX_OFFLINE=1 or when `modelDir` is set. */
      allowRemote: z.boolean().default(true),
      /**
       * When no model loads and the data dir has none recorded yet: `hashed` goes on with the
       * hashed lexical embedder (one warning says how to get a real model); `error` stops with
       * MEMEX_MODEL_UNAVAILABLE.
       */
      fallback: z.enum(['hashed', 'error']).default('hashed'),
      /**
       * Texts per model call. Larger batches amortise the call overhead but pad every text to the
       * longest in its batch (texts are sorted by length first, so padding stays small). On 2 cores
       * with USE-lite, 8 to 32 were within noise of each other and 64 or more lost 10-25% (bench/embedding.ts).
       */
      batchSize: z.number().int().min(1).max(1024).default(32),
    })
    .prefault({}),
  chunking: z
    .strictObject({
      /**
       * Largest chunk, in the model's tokens; null means the model's own input limit (capped at 256).
       * Smaller chunks make recall more precise but cut context apart; a chat turn under the size
       * always stays one chunk.
       */
      maxTokens: z.number().int().min(8).max(8192).nullable().default(null),
      /**
       * Tokens repeated from the end of one chunk at the start of the next, so a fact that straddles
       * a boundary is whole in one of them. Null means an eighth of the chunk size.
       */
      overlapTokens: z.number().int().min(0).nullable().default(null),
    })
    .prefault({}),
  index: z
    .strictObject({
      /**
       * HNSW links per node. More links: higher recall at the same `efSearch`, more memory (about
       * 8 bytes a link a row) and slower builds. 12-48 is the useful range. Changing it rebuilds the index.
       */
      m: z.number().int().min(4).max(128).default(16),
      /**
       * HNSW build-time candidate list. Higher builds a better graph, more slowly; it does not change
       * query cost. Changing it rebuilds the index.
       */
      efConstruction: z.number().int().min(8).max(2000).default(200),
      /**
       * HNSW query-time candidate list (raised to the number of results asked for when that is larger):
       * the recall/speed dial. At 100k rows, 64 gave recall@10 >= 0.95 in well under a millisecond here
       * (bench/ann.ts); raise it for recall, lower it for speed. Takes effect at once.
       */
      efSearch: z.number().int().min(1).max(5000).default(64),
      /**
       * Threads adding rows to a user's graph when it is built from nothing (a first open, a rebuild,
       * a compaction) with Memex's graph addon; null means the machine's cores. The graph then
       * depends on how the threads interleave (the same recall); 1 builds the same graph every time.
       */
      buildThreads: z.number().int().min(1).max(256).nullable().default(null),
      /** Rebuild the index when removed rows pass this share of all rows (they still cost memory and time). */
      compactAt: z.number().min(0.01).max(1).default(0.2),
      /**
       * When a filter leaves at most this many rows, they are searched exactly (every row scored)
       * instead of walking the graph with a filter, which gets slow and can come back short when few
       * rows match. Scoring 2,000 rows exactly took 1.3 ms (384-d) to 1.8 ms (512-d) here; a graph
       * walk over 100k rows takes well under one, so raise this only if filtered walks come back slow.
       */
      exactBelow: z.number().int().min(0).max(1_000_000).default(2000),
    })
    .prefault({}),
  search: z
    .strictObject({
      /**
       * Reciprocal rank fusion constant: a hit at rank r in a list adds `weight / (rrfK + r)`. Larger
       * values flatten the difference between ranks. The RRF paper's 60 made hybrid worse than BM25
       * alone at every weight here; 5 lets the top ranks lead (bench/quality.ts: hybrid beats or ties
       * both lists for rrfK 2-10 with the weights below).
       */
      rrfK: z.number().int().min(1).max(1000).default(5),
      /**
       * How much each list counts in hybrid fusion. With the shared offline model, BM25 ranked the
       * evidence far better than vectors (LoCoMo recall@10 0.624 vs 0.378), and hybrid beat both only
       * with vectors weighted 0.1-0.3 against lexical 1; 0.25 sits in the middle of that region. With a
       * stronger embedding model, raise `vectorWeight` and measure with bench/quality.ts.
       */
      vectorWeight: z.number().min(0).max(10).default(0.25),
      lexicalWeight: z.number().min(0).max(10).default(1),
      /**
       * The weight of the third list of hybrid fusion: the chunks ranked as read with the turn before
       * them (the cosine of the query to the unit-length sum of the chunk's vector and the previous
       * row's), so an answer ranks by the question it answers. 0 turns it off. Only conversations get
       * it (`contextCoherence`). bench/quality.ts: LoCoMo recall@10 0.642 to 0.697 at 0.5 with MSC
       * and MS MARCO held; at 1 MSC falls (src/index/turn-context.ts).
       */
      contextWeight: z.number().min(0).max(10).default(0.5),
      /**
       * Which sessions are conversations, whose rows take context from the row before: those where
       * at least half of the recent pairs of consecutive messages have at least this cosine. With the
       * shared USE-lite model, consecutive turns of LoCoMo and MSC conversations scored 0.52-0.71 at
       * the median, consecutive MS MARCO passages 0.26, and unrelated text 0.38 at the 95th
       * percentile (see `unrelatedCosine`). Another model has another scale: measure it.
       */
      contextCoherence: z.number().min(-1).max(1).default(0.4),
      /** How deep each list is read before fusion (at least the number of results asked for). */
      candidates: z.number().int().min(1).max(10_000).default(100),
      /**
       * How many of the best hits a caller's reranker (the `reranker` option of Memex, a search or a
       * window) is handed to reorder before the first `k` are kept (at least `k`). Without a reranker
       * it has no effect: Memex ships none.
       */
      rerankCandidates: z.number().int().min(1).max(1000).default(50),
      /**
       * What unrelated text scores with the embedding model: a hit's `relevance` counts a cosine
       * from here (0) to 1 (1). With the shared USE-lite model, LoCoMo questions against turns of
       * other conversations scored cosines of 0.19 at the median, 0.38 at the 95th percentile and
       * 0.47 at the 99th; 0.45 is also where one-word queries stop matching OCR junk (context.minScore).
       * Another model has another scale: measure it (random question-passage pairs, the 99th percentile).
       */
      unrelatedCosine: z.number().min(-1).max(0.99).default(0.45),
      /** BM25 term-frequency saturation (`k1`). */
      bm25K: z.number().min(0).max(10).default(1.2),
      /** BM25 length normalisation (`b`): 0 ignores chunk length, 1 normalises fully. */
      bm25B: z.number().min(0).max(1).default(0.7),
      /** Leave common English function words out of lexical search (see src/index/lexical.ts). */
      stopwords: z.boolean().default(true),
      /** Match English words by their Porter stem ("researching" finds "research"); see src/index/lexical.ts. */
      stemming: z.boolean().default(true),
    })
    .prefault({}),
  ingest: z
    .strictObject({
      /**
       * Most pages (PDF pages, TIFF pages) one file may have; checked as soon as the file opens,
       * before any page is parsed. The 352-page book in the eval set takes about 2 s to extract.
       */
      maxPages: z.number().int().positive().default(2_000),
      /**
       * Most characters a text document (.txt, .md, .html, .json) may have after it is reduced to
       * text: about 2,500 pages of prose, the same order as `maxPages`. Chunking is linear, so
       * the cost is in embedding it (about 80,000 chunks).
       */
      maxTextChars: z.number().int().positive().default(10_000_000),
      /**
       * Most pixels one image (or TIFF page) may decode to, checked from its header before decoding:
       * a 44-byte GIF can claim 700 million pixels. 100 M is a 10,000 x 10,000 scan; an RGBA decode
       * of it takes 400 MB.
       */
      maxImagePixels: z.number().int().positive().default(100_000_000),
      /** Longest side an image may claim, in pixels (the same check as `maxImagePixels`, for thin strips). */
      maxImageSide: z.number().int().positive().default(30_000),
      /** Longest side of the thumbnail kept for display (WebP, metadata stripped). */
      thumbnailSide: z.number().int().min(16).max(1024).default(256),
      ocr: z
        .strictObject({
          /** Read text from images and from PDF pages with no text layer (tesseract.js, English). */
          enabled: z.boolean().default(true),
          /**
           * Resolution PDF pages are rendered at for OCR. Tesseract reads best at about 300 dpi;
           * lower is faster (time grows with the pixel count) and loses small print.
           */
          dpi: z.number().int().min(72).max(600).default(300),
          /** A page whose OCR takes longer is skipped with a warning (the worker is restarted). */
          pageTimeoutMs: z.number().int().positive().default(60_000),
          /** All OCR of one file; pages after it runs out are skipped with a warning. */
          fileTimeoutMs: z.number().int().positive().default(600_000),
          /**
           * OCR lines read with less confidence (0-100) are dropped: on photos and scripts the
           * English model does not know, tesseract "reads" noise at 0-35, while printed English
           * lines score 80-96 and screenshot text 40-90 (measured on ../shared/eval/images).
           */
          minLineConfidence: z.number().min(0).max(100).default(35),
          /**
           * An image read with a mean confidence below this is read again turned 180 degrees (a
           * photo or scan taken upside down), and the better reading is kept. 0 turns the retry
           * off. Rendered PDF pages are not retried: it would double the OCR time of every
           * doubtful scan (about 8 s a page at 300 dpi here).
           */
          retryUpsideDownBelow: z.number().min(0).max(100).default(50),
          /** Pages with fewer non-space characters than this in their text layer are treated as scans. */
          minPageChars: z.number().int().nonnegative().default(8),
        })
        .prefault({}),
    })
    .prefault({}),
  context: z
    .strictObject({
      /**
       * The tiktoken encoding windows are counted in: `o200k_base` for GPT-4o and later OpenAI
       * models, `cl100k_base` for GPT-4 and GPT-3.5. Other model families tokenize differently;
       * pick the closer one and leave some slack in the budget.
       */
      encoding: z.enum(TOKEN_ENCODINGS).default('o200k_base'),
      /**
       * Tokens kept free for the model's reply: the window's messages fit in `budget - replyTokens`.
       * A model's context length covers the prompt and the reply together, so a window that fills
       * the whole budget leaves the model no room to answer.
       */
      replyTokens: z.number().int().min(0).default(512),
      /**
       * How the room left after the system prompt is shared between the parts of a window. A part
       * that needs less than its share (no notes, a short session, few memories) passes the rest
       * to the others in proportion to their shares, so the numbers are weights, not fixed sizes.
       * More `recent` keeps more verbatim turns (the conversation flows); more `memories` answers
       * questions about older sessions; more `summary` keeps the thread of a long session.
       */
      shares: z
        .strictObject({
          notes: z.number().min(0).max(1).default(0.1),
          summary: z.number().min(0).max(1).default(0.15),
          memories: z.number().min(0).max(1).default(0.3),
          recent: z.number().min(0).max(1).default(0.45),
        })
        .prefault({}),
      /**
       * Chunks recalled per window, best first, before they are fitted to their share: more gives
       * the memories part more to choose from when its share is large, at the cost of a deeper search.
       */
      memories: z.number().int().min(0).max(200).default(40),
      /**
       * The relevance floor of recalled memories: the least cosine similarity (-1 to 1) between a
       * chunk and the query (search's `minScore`, which says why the cosine and not the fused score).
       * Without one, a window for a query nothing matches is padded with the least bad chunks: OCR
       * fragments, page numbers. Chunks that share a word with the query are kept whatever their
       * cosine. With the shared USE-lite model, one-word queries put OCR junk at cosines up to about
       * 0.40 (`wine` against "Table of contents"), so the default is 0.45; on LoCoMo (bench/context.ts
       * --min-scores) it cost 0.1 point of evidence in the window at 2k and 4k budgets (66.2% -> 66.1%,
       * 75.7% -> 75.6%). A floor on every chunk, word matches included, cost 1 point at 0.3 and 3 at
       * 0.35. Stronger models score related text higher: measure before raising it. null: no floor.
       */
      minScore: z.number().min(-1).max(1).nullable().default(0.45),
      /**
       * The relevance floor on every recalled chunk, word matches included: the least `relevance`
       * (0 to 1, search's `minRelevance`; the query's only word match is always kept). 0.1 drops the
       * chunks that hold less than about 1% of the query's ideal BM25 score and whose cosine is
       * within a tenth of the model's unrelated level: on LoCoMo (bench/context.ts --min-relevances)
       * the evidence in the window moved +0.2 / -0.1 points (2k / 4k) and the memory tokens spent on
       * adversarial questions fell 3% / 7%; searches replayed with it (bench/quality.ts --grid) lost
       * nothing on LoCoMo, MSC or MS MARCO. 0.2 cost 0.6 / 1.7 points of evidence, 0.3 cost 4.8 / 6.6.
       * null: no floor.
       */
      minRelevance: z.number().min(0).max(1).nullable().default(0.1),
      /**
       * Context at read time: a recalled chat turn brings the turns just before and after it in its
       * session (the question before an answer, the reply after a statement) into the memories part,
       * shown with it as one memory, in order. Turns the window already shows are not repeated. It
       * costs nothing at ingest and one read per session holding recalled turns; each memory gets
       * longer, so fewer fit a share. 0 and 0 (the default) turn it off. Measured on LoCoMo and MSC
       * (bench/context.ts --neighbours; the table is in the README's context-window section).
       */
      neighbours: z
        .strictObject({
          before: z.number().int().min(0).max(5).default(NEIGHBOURS_BEFORE),
          after: z.number().int().min(0).max(5).default(NEIGHBOURS_AFTER),
        })
        .prefault({}),
      /**
       * Most tokens a stored extractive summary keeps; a window shows as much of it as its share
       * allows, dropping the least central sentences first. Larger keeps more of a long session's
       * thread but takes longer to extend (each extension re-ranks what it keeps).
       */
      summaryTokens: z.number().int().min(16).max(16_000).default(800),
      /**
       * Who writes a session's rolling summary: `extractive` (default, offline) keeps its most
       * central sentences; `model` asks the configured chat model (`llm`) to rewrite the summary as
       * turns leave the window: shorter and more readable, at one model call per extension. A failed
       * call falls back to extractive for that extension (with a warning). Without an `llm.baseUrl`
       * and model, `model` is refused at open. A summarizer passed to Memex.open wins over both.
       */
      summarizer: z.enum(['extractive', 'model']).default('extractive'),
    })
    .prefault({}),
  /**
   * The chat model Memex may call (chat, the memory proxy, model summaries): any server that speaks
   * the OpenAI Chat Completions API (OpenAI, Ollama, llama.cpp's server, vLLM, LM Studio, ...).
   * Nothing is ever called while `baseUrl` is null (the default). The API key is never read from
   * this file: it comes from MEMEX_LLM_API_KEY (or a library override), so a config file can be
   * shared or committed without leaking it; it is kept as a `Secret` that prints as `[redacted]`.
   */
  llm: z
    .strictObject({
      /** The API root, ending in `/v1` (e.g. `http://127.0.0.1:11434/v1` for Ollama). Null: no model. */
      baseUrl: z.url({ protocol: /^https?$/ }).nullable().default(null),
      /** The model name sent upstream when a request names none. */
      model: z.string().min(1).nullable().default(null),
      /** Only from MEMEX_LLM_API_KEY or an explicit override; refused in the config file. */
      apiKey: z.string().min(1).nullable().default(null),
      /** Extra headers sent with every request (an organisation id, a gateway's routing header). */
      headers: z.record(z.string().min(1), z.string()).default({}),
      /**
       * Longest wait for the first byte of the reply. A non-streamed reply arrives whole when the
       * model has finished, so this bounds its whole generation: long enough for the slowest
       * reply you expect from a local model on a CPU (or stream). At most 300 s: Node's fetch gives up
       * waiting for headers, and for body bytes, after that anyway.
       */
      timeoutMs: z.number().int().min(100).max(300_000).default(120_000),
      /** Longest silence between two streamed chunks before the reply is given up as stalled. */
      idleTimeoutMs: z.number().int().min(100).max(300_000).default(60_000),
      /**
       * Retries of a request that failed before any byte of its reply arrived (connection refused,
       * 429, 5xx), with exponential backoff and jitter, honouring Retry-After. A reply that has
       * begun streaming is never retried: the caller may already have shown part of it.
       */
      maxRetries: z.number().int().min(0).max(10).default(2),
      /**
       * The model's context length in tokens: the budget of a chat turn's window (prompt and
       * reply together) when the caller names none. Too small leaves out memories and turns; too
       * large for the model makes the server refuse or truncate. Set it to your model's context length.
       */
      contextTokens: z.number().int().min(64).max(10_000_000).default(8192),
      /**
       * Whether a new chat session is titled by the model (one short extra call after its first
       * exchange). A failed call keeps the offline title (the first user message, clipped).
       */
      titles: z.boolean().default(true),
    })
    .prefault({}),
  /**
   * Memory the model keeps. With `extract` on (off by default; it needs the `llm` model), after
   * each chat exchange the model proposes durable facts about the user, applied as notes (added,
   * or updated with their earlier text kept in `metadata.memory.history`; never deleted).
   */
  memory: z
    .strictObject({
      extract: z.boolean().default(false),
    })
    .prefault({}),
  server: z
    .strictObject({
      /** The address `memex serve` listens on: loopback only unless told otherwise (0.0.0.0 for all). */
      host: z.string().min(1).default('127.0.0.1'),
      port: z.number().int().min(0).max(65_535).default(8420),
      /** Largest JSON body, in bytes (uploads have `limits.maxFileBytes`). 5 MiB holds the largest message. */
      bodyLimit: z.number().int().min(1024).max(1024 * 1024 * 1024).default(5 * 1024 * 1024),
      /**
       * How long a client may take to send a whole request (headers and body) before the socket is
       * closed: the guard against clients that trickle bytes. Uploads of `limits.maxFileBytes` need it long.
       */
      requestTimeoutMs: z.number().int().min(1000).max(3_600_000).default(300_000),
      /** Requests per API key (or per trusted user) in each window; the answer past it is 429 with Retry-After. */
      rateLimit: windowLimit(1200),
      /**
       * Failed authentications (a malformed, wrong or revoked key) allowed per client address in each
       * window; past it the address gets 429 with Retry-After, even with a right key, so keys cannot
       * be guessed at speed. A request with no key guesses nothing and does not count (it gets 401).
       * Clients behind one address (a NAT, loopback) share the budget: raise `max` if many
       * legitimate clients there misconfigure keys at once.
       */
      failedAuthLimit: windowLimit(30),
      /**
       * Trust the `X-User-ID` header as the caller's identity, without an API key. Only for a server
       * reachable solely through a gateway that authenticates users and sets the header itself;
       * anyone who can reach the port can then act as any user.
       */
      trustUserHeader: z.boolean().default(false),
      /**
       * Ingest jobs shared by several instances (the PostgreSQL store). `heartbeatMs` (default 1 s):
       * how often a runner says it is alive and records progress; followers on other instances see
       * progress, and a cancel from another instance lands, at this pace. `staleMs` (default 15 s):
       * how long a running job's instance may stay silent before another takes the job over; lower
       * resumes sooner after a crash, but it must stay well above `heartbeatMs` plus the longest
       * stall of a busy instance, or a live runner loses its job and it runs twice.
       */
      jobs: z
        .strictObject({
          heartbeatMs: z.number().int().min(50).max(60_000).default(1000),
          staleMs: z.number().int().min(500).max(3_600_000).default(15_000),
        })
        .refine((jobs) => jobs.staleMs >= 3 * jobs.heartbeatMs, { message: 'staleMs must be at least three heartbeats (3 × heartbeatMs)' })
        .prefault({}),
    })
    .prefault({}),
  limits: z
    .strictObject({
      /** Largest message content accepted, in characters. */
      maxMessageChars: z.number().int().positive().default(1_000_000),
      /** Largest file accepted into a session, in bytes; checked while streaming, before anything is kept. */
      maxFileBytes: z.number().int().positive().default(100 * 1024 * 1024),
      /** Largest chat export accepted by `POST /v1/imports`, in bytes, all files together (exports of years run to gigabytes). */
      maxImportBytes: z.number().int().positive().default(4 * 1024 * 1024 * 1024),
    })
    .prefault({}),
  /**
   * Retention policies (README "Archive and retention"), each off (null) unless set, each with what
   * to do to what it catches: `archive` (compress, keep listed, out of search) or `trash` (the
   * session delete; messages for `maxMessagesPerSession`). They apply to native sessions; imported
   * conversations are kept as exported. `memex serve` applies them every `intervalMs` (default an
   * hour; 0 turns the schedule off) and `memex maintain [--dry-run]` on demand.
   * - `maxAgeDays`: sessions last active more than `limit` days ago.
   * - `maxSessionsPerUser`: past the `limit` most recently active sessions of a user (with `archive`,
   *   counted among the live ones; with `trash`, among all).
   * - `maxMessagesPerSession`: sessions holding more than `limit` messages. With `trash`, their oldest
   *   messages go until `limit` remain (the session goes on); with `archive`, the whole session is
   *   archived, closing it for new turns.
   */
  retention: z
    .strictObject({
      intervalMs: z.number().int().min(0).max(7 * 86_400_000).default(3_600_000),
      maxAgeDays: retentionRule(36_500),
      maxSessionsPerUser: retentionRule(10_000_000),
      maxMessagesPerSession: retentionRule(100_000_000),
    })
    .prefault({}),
  /** Deleted sessions and messages stay restorable in the trash for `retentionDays` (default 30), then `trash.purgeExpired` removes them. */
  trash: z
    .strictObject({
      retentionDays: z.number().min(0).max(36_500).default(30),
    })
    .prefault({}),
});

type ConfigOutput = z.output<typeof ConfigSchema>;
export type Config = Readonly<
  Omit<ConfigOutput, 'store' | 'limits' | 'embedding' | 'chunking' | 'index' | 'search' | 'ingest' | 'context' | 'server' | 'llm' | 'retention' | 'trash'> & {
    retention: Readonly<ConfigOutput['retention']>;
    trash: Readonly<ConfigOutput['trash']>;
    llm: Readonly<Omit<ConfigOutput['llm'], 'apiKey' | 'headers'>> & { apiKey: Secret | null; headers: Readonly<Record<string, string>> };
    server: Readonly<Omit<ConfigOutput['server'], 'rateLimit' | 'jobs'>> & { rateLimit: Readonly<ConfigOutput['server']['rateLimit']>; jobs: Readonly<ConfigOutput['server']['jobs']> };
    store: Readonly<ConfigOutput['store']>;
    limits: Readonly<ConfigOutput['limits']>;
    ingest: Readonly<Omit<ConfigOutput['ingest'], 'ocr'>> & { ocr: Readonly<ConfigOutput['ingest']['ocr']> };
    index: Readonly<ConfigOutput['index']>;
    search: Readonly<ConfigOutput['search']>;
    embedding: Readonly<ConfigOutput['embedding']>;
    chunking: Readonly<ConfigOutput['chunking']>;
    context: Readonly<Omit<ConfigOutput['context'], 'shares'>> & { shares: Readonly<ConfigOutput['context']['shares']> };
  }
>;
export type ConfigInput = z.input<typeof ConfigSchema>;

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** A config file to read instead of MEMEX_CONFIG / ./memex.config.json. */
  file?: string;
  overrides?: Partial<ConfigInput>;
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new MemexError('MEMEX_CONFIG_INVALID', `cannot read config file ${path}`, { cause, details: { path } });
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as Record<string, unknown>;
  } catch (cause) {
    throw new MemexError('MEMEX_CONFIG_INVALID', `config file ${path} is not a JSON object`, { cause, details: { path } });
  }
}

function fromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (env.MEMEX_DATA_DIR) out.dataDir = env.MEMEX_DATA_DIR;
  if (env.MEMEX_FSYNC) out.fsync = env.MEMEX_FSYNC;
  if (env.MEMEX_LOCK_TIMEOUT_MS) out.lockTimeoutMs = Number(env.MEMEX_LOCK_TIMEOUT_MS);
  if (env.MEMEX_DATABASE_URL) out.store = { kind: 'postgres', url: env.MEMEX_DATABASE_URL };
  const server: Record<string, unknown> = {};
  if (env.MEMEX_HOST) server.host = env.MEMEX_HOST;
  if (env.MEMEX_PORT) server.port = Number(env.MEMEX_PORT);
  if (Object.keys(server).length > 0) out.server = server;
  const embedding: Record<string, unknown> = {};
  if (env.MEMEX_MODEL) embedding.model = env.MEMEX_MODEL;
  if (env.MEMEX_MODEL_DIR) embedding.modelDir = env.MEMEX_MODEL_DIR;
  if (env.MEMEX_MODEL_CACHE) embedding.cacheDir = env.MEMEX_MODEL_CACHE;
  if (env.MEMEX_OFFLINE && env.MEMEX_OFFLINE !== '0') embedding.allowRemote = false;
  if (Object.keys(embedding).length > 0) out.embedding = embedding;
  const llm: Record<string, unknown> = {};
  if (env.MEMEX_LLM_BASE_URL) llm.baseUrl = env.MEMEX_LLM_BASE_URL;
  if (env.MEMEX_LLM_MODEL) llm.model = env.MEMEX_LLM_MODEL;
  if (env.MEMEX_LLM_API_KEY) llm.apiKey = env.MEMEX_LLM_API_KEY;
  if (Object.keys(llm).length > 0) out.llm = llm;
  return out;
}

/**
 * A value that must never be printed: JSON, `String()` and `util.inspect` show `[redacted]`, so a
 * config logged whole, or put in an error's details, does not carry the key. `reveal()` gives it.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '[redacted]';
  }
  toJSON(): string {
    return '[redacted]';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return '[redacted]';
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const explicitFile = options.file ?? env.MEMEX_CONFIG;
  const file = explicitFile ? resolve(cwd, explicitFile) : resolve(cwd, 'memex.config.json');
  const fromFile = explicitFile || existsSync(file) ? readConfigFile(file) : {};
  if (fromFile.llm !== null && typeof fromFile.llm === 'object' && 'apiKey' in fromFile.llm) {
    // Said without the value: the message may end up in a log.
    throw new MemexError('MEMEX_CONFIG_INVALID', `invalid configuration: llm.apiKey may not be set in the config file ${file}; set MEMEX_LLM_API_KEY in the environment instead`, { details: { file } });
  }
  const layers: Record<string, unknown>[] = [fromFile, fromEnv(env), (options.overrides ?? {})];
  const merge = (parts: Record<string, unknown>[]): Record<string, unknown> => parts.reduce((all, part) => ({ ...all, ...part }), {});
  const merged = merge(layers);
  // Sections merge field by field, so MEMEX_MODEL does not wipe a file's `embedding.batchSize`.
  for (const section of ['store', 'limits', 'embedding', 'chunking', 'index', 'search', 'ingest', 'context', 'server', 'llm', 'trash']) {
    merged[section] = merge(layers.map((layer) => (layer[section] ?? {}) as Record<string, unknown>));
  }
  const nested = (section: string, field: string): Record<string, unknown> =>
    merge(layers.map((layer) => ((layer[section] as Record<string, unknown> | undefined)?.[field] ?? {}) as Record<string, unknown>));
  (merged.ingest as Record<string, unknown>).ocr = nested('ingest', 'ocr');
  (merged.context as Record<string, unknown>).shares = nested('context', 'shares');
  (merged.server as Record<string, unknown>).rateLimit = nested('server', 'rateLimit');
  (merged.server as Record<string, unknown>).failedAuthLimit = nested('server', 'failedAuthLimit');
  (merged.server as Record<string, unknown>).jobs = nested('server', 'jobs');
  const result = ConfigSchema.safeParse(merged);
  if (!result.success) {
    const summary = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new MemexError('MEMEX_CONFIG_INVALID', `invalid configuration: ${summary}`, {
      cause: result.error,
      details: { file: explicitFile || existsSync(file) ? file : null },
    });
  }
  const { embedding, llm } = result.data;
  return deepFreeze({
    ...result.data,
    llm: { ...llm, apiKey: llm.apiKey === null ? null : new Secret(llm.apiKey) },
    dataDir: resolve(cwd, result.data.dataDir),
    embedding: {
      ...embedding,
      model: embedding.model === 'hashed' ? HASHED_MODEL : embedding.model,
      modelDir: embedding.modelDir === null ? null : resolve(cwd, embedding.modelDir),
      cacheDir: embedding.cacheDir === null ? null : resolve(cwd, embedding.cacheDir),
    },
  });
}
