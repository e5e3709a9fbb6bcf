import { createHash } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { z } from 'zod';
import { MemexError, isMemexError, type EmbeddingModel, type Metadata, type VectorLine } from '../../core/index.js';
import { writeSynced, type Store, type VectorStatus } from '../../store/index.js';
import type { IndexProgress } from '../backend.js';
import { HnswVectorIndex, type HnswParams } from '../hnsw.js';
import { HnswBuilder } from '../hnsw-builder.js';
import { LexicalIndex, type Bm25Params } from '../lexical.js';
import { dot, exactScan, type Neighbor } from '../vector-index.js';
import { COHERENCE_ROWS, isConversation, messageOfChunk } from '../turn-context.js';

/** What each label stands for, kept in columns so a filter over 100k rows is a tight loop. */
export const ROLE_CODES = { none: 0, user: 1, assistant: 2, system: 3, tool: 4 } as const;
export const KIND_CODES = { message: 0, file: 1 } as const;
export const ORIGIN_CODES = { native: 0, imported: 1 } as const;

export interface LabelInfo {
  label: number;
  sessionId: string;
  row: number;
  chunkId: string;
}

interface IndexedSession {
  sessionId: string;
  origin: keyof typeof ORIGIN_CODES;
  rows: number;
  tail: string | null;
  /** Labels of rows 0..rows-1, in row order. */
  labels: number[];
}

export interface UserIndexOptions {
  store: Store;
  userId: string;
  /** Where the index lives; null keeps it in memory only. */
  dir: string | null;
  model: EmbeddingModel;
  hnsw: HnswParams;
  bm25: Bm25Params;
  /** Compact when removed rows pass this share of all rows (default 0.2). */
  compactAt: number;
  /** fsync the index files before the manifest points at them. */
  sync: boolean;
  /** A build from nothing of at least this many rows puts the graph in a worker thread (default BUILD_IN_THREAD_ROWS). */
  buildInThreadRows?: number;
  /** Threads adding rows to a graph built in its worker (default: the machine's cores; see `buildThreads`). */
  buildThreads?: number;
  onProgress?: (progress: IndexProgress) => void;
}

/**
 * From this many rows, a build from nothing adds them to the graph in a worker thread: below it,
 * starting the thread (about 0.15 s, loading the addon there) costs more than the build takes in the
 * calling thread (0.3-0.4 s for 2,000 rows of 384-d here), which that stalls no longer than that.
 */
export const BUILD_IN_THREAD_ROWS = 2_000;

/** Why an index was built from the session files instead of loaded. */
export type RebuildReason = 'missing' | 'corrupt' | 'stale-model' | 'stale-params' | 'compaction' | 'requested';

export interface SyncReport {
  added: number;
  removed: number;
  sessions: number;
}

/** Typed arrays (the label columns) round-trip as themselves only with `moreTypes`. */
const packr = new Packr({ moreTypes: true });

const ManifestSchema = z.object({
  v: z.literal(1),
  kind: z.literal('memex-index'),
  model: z.string(),
  dimension: z.number().int().positive(),
  hnsw: z.object({ m: z.number().int(), efConstruction: z.number().int() }),
    // `stemming` came later: an index saved before it was built without, so it reads as stale.
  bm25: z.object({ k: z.number(), b: z.number(), d: z.number(), stopwords: z.boolean(), stemming: z.boolean().default(false) }),
  generation: z.number().int().nonnegative(),
  files: z.object({
    hnsw: z.object({ name: z.string(), bytes: z.number().int(), sha256: z.string() }),
    meta: z.object({ name: z.string(), bytes: z.number().int(), sha256: z.string() }),
  }),
  /** Per session, the rows indexed and the chunk id of the last: what `sync` compares with the store. */
  sessions: z.record(z.string(), z.object({ rows: z.number().int().nonnegative(), tail: z.string().nullable() })),
  live: z.number().int().nonnegative(),
  savedAt: z.string(),
});
type Manifest = z.infer<typeof ManifestSchema>;

const MetaSchema = z.object({
  v: z.literal(1),
  sessions: z.array(z.object({ sessionId: z.string(), origin: z.enum(['native', 'imported']), rows: z.number().int(), tail: z.string().nullable(), labels: z.array(z.number().int()) })),
  next: z.number().int().nonnegative(),
  session: z.instanceof(Int32Array),
  row: z.instanceof(Uint32Array),
  role: z.instanceof(Uint8Array),
  kind: z.instanceof(Uint8Array),
  time: z.instanceof(Float64Array),
  chunkIds: z.array(z.string()),
  lexical: z.unknown(),
  /** Per label, 1 + the index of its message's metadata in `metadata` (0: none). Absent in indexes saved before `where`. */
  metaRef: z.instanceof(Uint32Array).optional(),
  metadata: z.array(z.record(z.string(), z.unknown())).optional(),
});

/**
 * One user's search index over the rows of all their sessions: HNSW for vectors, BM25 for words,
 * and per label where it came from (session, row, role, kind, time, origin) for filters and for
 * reading the chunk back. It is a cache of the session files, which stay the truth:
 *
 * - `open` loads it from `users/<id>/index/` when its manifest matches the recorded model and its
 *   files match their checksums, and otherwise rebuilds it from the sessions (with progress);
 * - `sync` brings it up to date with the store session by session: new rows are added, a session
 *   whose rows were rewritten (a deleted message, a reindex) or removed has its labels removed and
 *   re-added; removed labels are only marked, and a compaction rebuilds once they pass `compactAt`;
 * - `save` writes new files under a new generation, then the manifest that names them, then drops
 *   the old ones: a crash at any point leaves a manifest naming complete files.
 */
export class UserIndex {
  private sessions = new Map<string, IndexedSession>();
  /** Each row's cosine to the row before it, by label, once computed (`pairCosine`); NaN before. */
  private pairs = new Float64Array(0);
  /** Which sessions are conversations (`inConversation`), as last judged. */
  private readonly conversations = new WeakMap<IndexedSession, { rows: number; threshold: number; value: boolean }>();
  /** Session ids by slot (the `session` column holds slots); a dropped session's slot is not reused. */
  private sessionSlots: string[] = [];
  private readonly slotOf = new Map<string, number>();
  private next = 0;
  private session = new Int32Array(1024);
  private row = new Uint32Array(1024);
  private role = new Uint8Array(1024);
  private kind = new Uint8Array(1024);
  private time = new Float64Array(1024);
  private chunkIds: string[] = [];
  /**
   * Message metadata for `where` filters: per label, 1 + an index into `metadata` (0: none, as for
   * file chunks). Kept in the index rather than read from the messages at search time, because a
   * filter must be tested on every row before the graph walk, which must not read the session files;
   * messages are immutable, so it can only go stale with its rows (a deleted message rewrites them).
   * Only messages with metadata take a slot, one per message (its chunks share it).
   */
  private metaRef = new Uint32Array(1024);
  private metadata: Metadata[] = [];
  /**
   * Every label's row, in label order. hnswlib hands rows back only as JS arrays (about 85 µs a
   * row), far too slow for exact scans and MMR, so the index keeps its own float32 copy: this
   * doubles the memory of the vectors, in exchange for exact filtered search at memory speed.
   * Not saved: it is read back from the sessions' `embeddings.npy` when the index loads.
   */
  private matrix = new Float32Array(0);
  private generation = 0;
  /** Rows added or removed since the last save. */
  dirty = 0;
  /** The store's `vectorEpoch` when the last full sync began; NaN before one. */
  syncedEpoch = Number.NaN;

  private constructor(
    private readonly options: UserIndexOptions,
    private graph: HnswVectorIndex,
    readonly lexical: LexicalIndex,
  ) {}

  /** The HNSW graph over the live rows. */
  get vectors(): HnswVectorIndex {
    return this.graph;
  }

  static empty(options: UserIndexOptions): UserIndex {
    return new UserIndex(options, HnswVectorIndex.create(options.model.dimension, options.hnsw), LexicalIndex.create(options.bm25));
  }

  /**
   * Loads the saved index, or builds it from the session files when there is none, it cannot be
   * read, or it was made for another model or HNSW graph; then syncs it with the store.
   */
  static async open(options: UserIndexOptions): Promise<{ index: UserIndex; rebuilt: RebuildReason | null; problem: string | null }> {
    let loaded: UserIndex | null = null;
    let rebuilt: RebuildReason | null = null;
    let problem: string | null = null;
    if (options.dir) {
      try {
        loaded = await UserIndex.load(options);
        if (!loaded) rebuilt = 'missing';
      } catch (cause) {
        if (!isMemexError(cause) || cause.code !== 'MEMEX_INDEX_CORRUPT') throw cause;
        rebuilt = cause.details?.reason === 'stale-model' ? 'stale-model' : cause.details?.reason === 'stale-params' ? 'stale-params' : 'corrupt';
        problem = cause.message;
      }
    }
    const index = loaded ?? UserIndex.empty(options);
    await index.sync();
    if (rebuilt !== null) await index.save();
    return { index, rebuilt, problem };
  }

  get size(): number {
    return this.vectors.size;
  }

  get model(): EmbeddingModel {
    return this.options.model;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  get dir(): string | null {
    return this.options.dir;
  }

  /** Labels allocated so far (removed ones included): the bound of every label. */
  get labelCount(): number {
    return this.next;
  }

  /** Rows removed but still in the graph. */
  get removed(): number {
    return this.vectors.stored - this.vectors.size;
  }

  /**
   * Makes the index match the store: every session's rows in, nothing else. Sessions are compared by
   * row count and last chunk id, so an unchanged session costs one status call.
   */
  async sync(options: { sessionIds?: readonly string[] } = {}): Promise<SyncReport> {
    const { store, userId } = this.options;
    const report: SyncReport = { added: 0, removed: 0, sessions: 0 };
    // Read before looking: a change made while this sync runs leaves the epoch unequal, so the next sync looks again.
    const epoch = store.vectorEpoch(userId);
    if (!options.sessionIds && epoch === this.syncedEpoch) return report;
    const present = await listSessions(store, userId);
    const wanted = options.sessionIds ? new Set(options.sessionIds) : null;
    if (!wanted) {
      for (const [sessionId, session] of this.sessions) {
        if (!present.has(sessionId)) report.removed += this.dropSession(session);
      }
    }
    const todo = [...present].filter(([id]) => !wanted || wanted.has(id));
    let total = 0;
    const statuses = [];
    for (const [sessionId, origin] of todo) {
      const status = await store.vectorStatus(userId, sessionId).catch(skipMissing);
      if (status) {
        statuses.push({ sessionId, origin, status });
      } else {
        // Gone or unreadable (the store reports which): its rows leave the index, the others stay.
        const known = this.sessions.get(sessionId);
        if (known) report.removed += this.dropSession(known);
      }
    }
    for (const { status, sessionId } of statuses) {
      const known = this.sessions.get(sessionId);
      if (!known || known.rows !== status.rows || known.tail !== status.tail) total += status.rows - (known && known.rows < status.rows ? known.rows : 0);
    }
    // A build from nothing (a first open, a rebuild, a compaction) puts the graph in a thread of its own.
    const builder = this.graph.stored === 0 && total >= (this.options.buildInThreadRows ?? BUILD_IN_THREAD_ROWS) ? new HnswBuilder({ dimension: this.options.model.dimension, params: this.options.hnsw, capacity: total, threads: this.options.buildThreads ?? availableParallelism() }) : null;
    try {
      await this.syncSessions(statuses, report, builder, total);
      if (builder) this.graph = await this.finishBuild(builder);
    } finally {
      await builder?.close();
    }
    if (total > 0) this.options.onProgress?.({ phase: 'index', done: total, total });
    this.dirty += report.added + report.removed;
    if (!options.sessionIds) this.syncedEpoch = epoch;
    return report;
  }

  /**
   * The graph the thread built; if the thread failed (it could not start, say), the same graph
   * built here from the rows this index keeps.
   */
  private async finishBuild(builder: HnswBuilder): Promise<HnswVectorIndex> {
    try {
      return await builder.finish(join(tmpdir(), `memex-graph-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.hnsw`));
    } catch {
      const { dimension } = this.options.model;
      const graph = HnswVectorIndex.create(dimension, this.options.hnsw, this.next);
      for (let label = 0; label < this.next; label++) graph.add(label, this.matrix.subarray(label * dimension, (label + 1) * dimension));
      return graph;
    }
  }

  private async syncSessions(statuses: { sessionId: string; origin: IndexedSession['origin']; status: VectorStatus }[], report: SyncReport, builder: HnswBuilder | null, total: number): Promise<void> {
    const { store, userId } = this.options;
    let done = 0;
    for (const { sessionId, origin, status } of statuses) {
      const known = this.sessions.get(sessionId);
      if (known && known.rows === status.rows && known.tail === status.tail) continue;
      if (status.rows > 0 && status.model !== this.options.model.model) {
        throw new MemexError('MEMEX_MODEL_MISMATCH', `session ${sessionId} has rows of ${status.model}, the index is of ${this.options.model.model}; run \`memex reindex\``);
      }
      const grown = known && known.rows > 0 && known.rows < status.rows;
      let data = await store.readVectors(userId, sessionId, { from: grown ? known.rows - 1 : 0 }).catch(skipMissing);
      if (!data) continue;
      report.sessions++;
      let from = 0;
      if (grown && data.lines[0]?.chunkId === known.tail) {
        from = 1; // the row we read to check the tail is already in
      } else if (known) {
        report.removed += this.dropSession(known);
        // Grown, but not only at the end (a restored message went back among the others): every row is read again.
        if (grown) data = await store.readVectors(userId, sessionId).catch(skipMissing);
        if (!data) continue;
      }
      const session = this.sessions.get(sessionId) ?? this.addSession(sessionId, origin);
      const metadata = await messageMetadata(store, userId, sessionId, data.lines.slice(from));
      const refs = new Map<string, number>();
      for (let i = from; i < data.lines.length; i++) {
        const line = data.lines[i] as VectorLine;
        this.addRow(session, line, data.vectors.subarray(i * this.options.model.dimension, (i + 1) * this.options.model.dimension), this.metadataRef(line, metadata, refs), builder);
        report.added++;
        if (++done % 256 === 0) this.options.onProgress?.({ phase: 'index', done, total });
      }
      session.tail = status.tail;
      await builder?.room();
    }
  }

  /** True when removed rows have passed the compaction threshold. */
  get needsCompaction(): boolean {
    const stored = this.vectors.stored;
    return stored >= 1000 && this.removed / stored > this.options.compactAt;
  }

  /** A fresh index from the session files: what compaction and `memex doctor --rebuild` do. */
  static async rebuild(options: UserIndexOptions): Promise<UserIndex> {
    const index = UserIndex.empty(options);
    await index.sync();
    await index.save();
    return index;
  }

  describe(label: number): LabelInfo | null {
    if (!this.vectors.has(label)) return null;
    const slot = this.session[label] as number;
    return { label, sessionId: this.sessionSlots[slot] as string, row: this.row[label] as number, chunkId: this.chunkIds[label] as string };
  }

  /** Column views for filters: index by label, up to `labelCount`. `metaRef` 0 is no metadata, else `metadata[ref - 1]`. */
  columns(): {
    session: Int32Array;
    role: Uint8Array;
    kind: Uint8Array;
    time: Float64Array;
    metaRef: Uint32Array;
    metadata: readonly Metadata[];
    sessionOrigin: (slot: number) => number;
    /** The session's id, by slot (an imported session's names its source). */
    sessionId: (slot: number) => string;
    sessionSlot: (id: string) => number | undefined;
  } {
    return {
      session: this.session,
      role: this.role,
      kind: this.kind,
      time: this.time,
      metaRef: this.metaRef,
      metadata: this.metadata,
      sessionOrigin: (slot) => ORIGIN_CODES[this.sessions.get(this.sessionSlots[slot] as string)?.origin ?? 'native'],
      sessionSlot: (id) => this.slotOf.get(id),
      sessionId: (slot) => this.sessionSlots[slot] as string,
    };
  }

  /** Labels of a session's rows (live ones). */
  labelsOf(sessionId: string): readonly number[] {
    return this.sessions.get(sessionId)?.labels ?? [];
  }

  isLive(label: number): boolean {
    return this.vectors.has(label);
  }

  /** Exact inner products of the query with the given (live) labels' rows, best `k` (`exactScan`: native where built). */
  exact(query: Float32Array, k: number, labels: Uint32Array): Neighbor[] {
    return exactScan(this.matrix, this.options.model.dimension, query, labels, 0, k);
  }

  /** The query's inner product with a live label's row. */
  dotQuery(query: Float32Array, label: number): number {
    return dot(query, this.matrix, label * this.options.model.dimension);
  }

  /**
   * The row before a message row in its session, when that is a message row too (turn-context.ts);
   * null for a session's first row, a file chunk, or a row after one.
   */
  previousMessageRow(label: number): number | null {
    const labels = this.sessionOfLabel(label)?.labels;
    const row = this.row[label] as number;
    if (!labels || labels[row] !== label || row === 0) return null;
    const previous = labels[row - 1] as number;
    return this.kind[label] === KIND_CODES.message && this.kind[previous] === KIND_CODES.message ? previous : null;
  }

  /** The row after this one in its session; null for the last. */
  nextRow(label: number): number | null {
    const labels = this.sessionOfLabel(label)?.labels;
    const row = this.row[label] as number;
    if (!labels || labels[row] !== label) return null;
    return labels[row + 1] ?? null;
  }

  /**
   * Whether the label's session is a conversation (turn-context.ts `isConversation`), judged on its
   * last `COHERENCE_ROWS` rows: kept until the session's rows change or another threshold is asked.
   */
  inConversation(label: number, threshold: number): boolean {
    const session = this.sessionOfLabel(label);
    return session ? this.isConversation(session, threshold) : false;
  }

  /** Whether a session is a conversation (`inConversation`); false for a session the index does not hold. */
  sessionIsConversation(sessionId: string, threshold: number): boolean {
    const session = this.sessions.get(sessionId);
    return session ? this.isConversation(session, threshold) : false;
  }

  private isConversation(session: IndexedSession, threshold: number): boolean {
    const known = this.conversations.get(session);
    if (known && known.rows === session.labels.length && known.threshold === threshold) return known.value;
    const { labels } = session;
    const pairs: number[] = [];
    for (let row = Math.max(1, labels.length - COHERENCE_ROWS); row < labels.length; row++) {
      const a = labels[row - 1] as number;
      const b = labels[row] as number;
      if (this.kind[a] !== KIND_CODES.message || this.kind[b] !== KIND_CODES.message) continue;
      if (messageOfChunk(this.chunkIds[a] as string) === messageOfChunk(this.chunkIds[b] as string)) continue;
      pairs.push(this.pairCosine(b, a));
    }
    const value = isConversation(pairs, threshold);
    this.conversations.set(session, { rows: labels.length, threshold, value });
    return value;
  }

  /**
   * A row's inner product with the row before it (`previousMessageRow`), computed once: the row
   * before a label never changes (a session rewritten in the middle comes back under new labels).
   */
  pairCosine(label: number, previous: number): number {
    if (label >= this.pairs.length) {
      const grown = new Float64Array(Math.max(1024, this.session.length, label + 1)).fill(Number.NaN);
      grown.set(this.pairs);
      this.pairs = grown;
    }
    let cosine = this.pairs[label] as number;
    if (Number.isNaN(cosine)) {
      const { dimension } = this.options.model;
      cosine = dot(this.matrix.subarray(label * dimension, (label + 1) * dimension), this.matrix, previous * dimension);
      this.pairs[label] = cosine;
    }
    return cosine;
  }

  private sessionOfLabel(label: number): IndexedSession | undefined {
    const slot = this.session[label] as number;
    return slot < 0 ? undefined : this.sessions.get(this.sessionSlots[slot] as string);
  }

  /** A live label's row (a view: do not modify), or null. */
  vectorOf(label: number): Float32Array | null {
    if (!this.vectors.has(label)) return null;
    const { dimension } = this.options.model;
    return this.matrix.subarray(label * dimension, (label + 1) * dimension);
  }

  async save(): Promise<void> {
    const { dir, sync } = this.options;
    if (!dir) return;
    await mkdir(dir, { recursive: true });
    const generation = this.generation + 1;
    const hnswName = `hnsw.${generation}.bin`;
    const metaName = `meta.${generation}.msgpack`;
    const hnswPath = join(dir, hnswName);
    const metaPath = join(dir, metaName);
    try {
      await this.vectorsWrite(hnswPath);
      const meta = packr.pack({
        v: 1,
        sessions: [...this.sessions.values()].map(({ sessionId, origin, rows, tail, labels }) => ({ sessionId, origin, rows, tail, labels })),
        next: this.next,
        session: this.session.slice(0, this.next),
        row: this.row.slice(0, this.next),
        role: this.role.slice(0, this.next),
        kind: this.kind.slice(0, this.next),
        time: this.time.slice(0, this.next),
        chunkIds: this.chunkIds,
        lexical: this.lexical.toJSON(),
        metaRef: this.metaRef.slice(0, this.next),
        metadata: this.metadata,
      });
      await writeSynced(metaPath, meta, sync);
      const hnswBytes = await readFile(hnswPath);
      const manifest: Manifest = {
        v: 1,
        kind: 'memex-index',
        model: this.options.model.model,
        dimension: this.options.model.dimension,
        hnsw: { m: this.options.hnsw.m, efConstruction: this.options.hnsw.efConstruction },
        bm25: { ...this.options.bm25 },
        generation,
        files: {
          hnsw: { name: hnswName, bytes: hnswBytes.length, sha256: sha256(hnswBytes) },
          meta: { name: metaName, bytes: meta.length, sha256: sha256(meta) },
        },
        sessions: Object.fromEntries([...this.sessions.values()].map((s) => [s.sessionId, { rows: s.rows, tail: s.tail }])),
        live: this.size,
        savedAt: new Date().toISOString(),
      };
      const manifestTemp = join(dir, `manifest.json.${process.pid}.tmp`);
      await writeSynced(manifestTemp, `${JSON.stringify(manifest, null, 2)}\n`, sync);
      await rename(manifestTemp, join(dir, 'manifest.json'));
    } catch (cause) {
      await rm(hnswPath, { force: true });
      await rm(metaPath, { force: true });
      throw new MemexError('MEMEX_IO', `cannot save the search index in ${dir}: ${(cause as Error).message}`, { cause });
    }
    this.generation = generation;
    this.dirty = 0;
    // Files of older generations (and temp files of a crashed save) are no longer named by the manifest.
    for (const name of await readdir(dir)) {
      if (name !== 'manifest.json' && name !== hnswName && name !== metaName) await rm(join(dir, name), { force: true });
    }
  }

  private async vectorsWrite(path: string): Promise<void> {
    this.vectors.write(path);
    if (this.options.sync) {
      const handle = await open(path, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
  }

  /** The saved index, null when there is none; MEMEX_INDEX_CORRUPT (with `details.reason`) when it cannot be used. */
  private static async load(options: UserIndexOptions): Promise<UserIndex | null> {
    const dir = options.dir as string;
    let text: string;
    try {
      text = await readFile(join(dir, 'manifest.json'), 'utf8');
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw corrupt(`cannot read ${dir}/manifest.json: ${(cause as Error).message}`);
    }
    let manifest: Manifest;
    try {
      manifest = ManifestSchema.parse(JSON.parse(text));
    } catch {
      throw corrupt(`${dir}/manifest.json is not an index manifest`);
    }
    if (manifest.model !== options.model.model || manifest.dimension !== options.model.dimension) {
      throw corrupt(`the index was built from ${manifest.model} rows; the data dir's model is ${options.model.model}`, 'stale-model');
    }
    const { bm25 } = options;
    if ((Object.keys(bm25) as (keyof Bm25Params)[]).some((key) => manifest.bm25[key] !== bm25[key])) {
      throw corrupt('the lexical index was built with other BM25 settings than the config asks for', 'stale-params');
    }
    if (manifest.hnsw.m !== options.hnsw.m || manifest.hnsw.efConstruction !== options.hnsw.efConstruction) {
      throw corrupt(`the index was built with M=${manifest.hnsw.m}, efConstruction=${manifest.hnsw.efConstruction}; the config asks for M=${options.hnsw.m}, efConstruction=${options.hnsw.efConstruction}`, 'stale-params');
    }
    const files = await Promise.all(
      [manifest.files.hnsw, manifest.files.meta].map(async (file) => {
        const bytes = await readFile(join(dir, file.name)).catch(() => null);
        if (!bytes || bytes.length !== file.bytes || sha256(bytes) !== file.sha256) throw corrupt(`${dir}/${file.name} is missing or does not match its checksum`);
        return bytes;
      }),
    );
    let meta: z.infer<typeof MetaSchema>;
    try {
      meta = MetaSchema.parse(packr.unpack(files[1] as Buffer));
    } catch (cause) {
      throw corrupt(`${dir}/${manifest.files.meta.name} cannot be read: ${(cause as Error).message}`);
    }
    if (!meta.metaRef || !meta.metadata) throw corrupt('the index was saved before message metadata filters: it is built again to hold them', 'stale-params');
    const live = meta.sessions.flatMap((session) => session.labels);
    const vectors = HnswVectorIndex.read(join(dir, manifest.files.hnsw.name), options.model.dimension, options.hnsw, live);
    const lexical = LexicalIndex.load(meta.lexical, options.bm25);
    const index = new UserIndex(options, vectors, lexical);
    index.restore(meta, meta.metaRef, meta.metadata, manifest.generation);
    await index.loadRows();
    return index;
  }

  private restore(meta: z.infer<typeof MetaSchema>, metaRef: NonNullable<z.infer<typeof MetaSchema>['metaRef']>, metadata: NonNullable<z.infer<typeof MetaSchema>['metadata']>, generation: number): void {
    const n = meta.next;
    for (const column of [meta.session, meta.row, meta.role, meta.kind, meta.time, metaRef]) {
      if (column.length !== n) throw corrupt('the label columns disagree in length');
    }
    if (meta.chunkIds.length !== n) throw corrupt('the label columns disagree in length');
    this.next = n;
    this.session = grow(meta.session, n);
    this.row = grow(meta.row, n);
    this.role = grow(meta.role, n);
    this.kind = grow(meta.kind, n);
    this.time = grow(meta.time, n);
    this.metaRef = grow(metaRef, n);
    this.metadata = metadata;
    for (let label = 0; label < n; label++) if ((this.metaRef[label] as number) > this.metadata.length) throw corrupt(`label ${label} names metadata past the list`);
    this.chunkIds = meta.chunkIds;
    this.generation = generation;
    for (const session of meta.sessions) {
      const slot = this.sessionSlots.length;
      this.sessionSlots.push(session.sessionId);
      this.slotOf.set(session.sessionId, slot);
      for (const label of session.labels) {
        if (label >= n) throw corrupt(`label ${label} is past the label columns`);
        this.session[label] = slot;
      }
      this.sessions.set(session.sessionId, { ...session });
    }
  }

  private storeRow(label: number, vector: Float32Array): void {
    const { dimension } = this.options.model;
    if ((label + 1) * dimension > this.matrix.length) {
      const grown = new Float32Array(Math.max(1024, label + 1, (this.matrix.length / dimension) * 2) * dimension);
      grown.set(this.matrix);
      this.matrix = grown;
    }
    this.matrix.set(vector, label * dimension);
  }

  /** Fills the row copy from the session files after a load; sessions changed since are fixed by the sync that follows. */
  private async loadRows(): Promise<void> {
    const { store, userId, model } = this.options;
    this.matrix = new Float32Array(Math.max(1024, this.next) * model.dimension);
    for (const session of [...this.sessions.values()]) {
      const data = await store.readVectors(userId, session.sessionId).catch(skipMissing);
      const usable = data !== null && data.dimension === model.dimension && data.rows >= session.rows && data.lines[session.rows - 1]?.chunkId === session.tail;
      if (!usable) {
        // Rewritten or gone: drop it now, so the sync re-reads it whole (or forgets it).
        this.dropSession(session);
        continue;
      }
      session.labels.forEach((label, row) => this.matrix.set(data.vectors.subarray(row * model.dimension, (row + 1) * model.dimension), label * model.dimension));
    }
  }

  private addSession(sessionId: string, origin: IndexedSession['origin']): IndexedSession {
    const session: IndexedSession = { sessionId, origin, rows: 0, tail: null, labels: [] };
    this.sessions.set(sessionId, session);
    this.slotOf.set(sessionId, this.sessionSlots.length);
    this.sessionSlots.push(sessionId);
    return session;
  }

  /** Removes a session's rows; returns how many. */
  private dropSession(session: IndexedSession): number {
    for (const label of session.labels) {
      this.vectors.remove(label);
      this.lexical.remove(label);
      this.session[label] = -1;
    }
    this.sessions.delete(session.sessionId);
    this.slotOf.delete(session.sessionId);
    return session.labels.length;
  }

  /** The metadata ref of a row: one slot per message with metadata, shared by its chunks. */
  private metadataRef(line: VectorLine, metadata: ReadonlyMap<string, Metadata>, refs: Map<string, number>): number {
    if (line.source.kind !== 'message') return 0;
    const { messageId } = line.source;
    const known = refs.get(messageId);
    if (known !== undefined) return known;
    const found = metadata.get(messageId);
    let ref = 0;
    if (found) {
      this.metadata.push(found);
      ref = this.metadata.length;
    }
    refs.set(messageId, ref);
    return ref;
  }

  private addRow(session: IndexedSession, line: VectorLine, vector: Float32Array, metaRef: number, builder: HnswBuilder | null = null): void {
    const label = this.next;
    if (label >= this.session.length) {
      const size = this.session.length * 2;
      this.session = grow(this.session, size);
      this.row = grow(this.row, size);
      this.role = grow(this.role, size);
      this.kind = grow(this.kind, size);
      this.time = grow(this.time, size);
      this.metaRef = grow(this.metaRef, size);
    }
    const { source } = line;
    this.session[label] = this.slotOf.get(session.sessionId) as number;
    this.row[label] = line.row;
    this.role[label] = source.kind === 'message' ? ROLE_CODES[source.role] : ROLE_CODES.none;
    this.kind[label] = KIND_CODES[source.kind];
    this.time[label] = source.kind === 'message' ? Date.parse(source.createdAt) : Number.NaN;
    this.chunkIds[label] = line.chunkId;
    this.metaRef[label] = metaRef;
    this.storeRow(label, vector);
    if (builder) builder.add(label, vector);
    else this.graph.add(label, vector);
    this.lexical.add(label, line.text);
    this.next++;
    session.labels.push(label);
    session.rows = line.row + 1;
  }
}

/** Fewer new messages than this are read one by one (by id); more, by reading the session's log once. */
const READ_ONE_BY_ONE = 32;

/**
 * The metadata of the messages these rows came from (those with any). A message or session gone
 * since the rows were read, or a log that cannot be read, gives none: the rows stay searchable,
 * only `where` cannot see them.
 */
async function messageMetadata(store: Store, userId: string, sessionId: string, lines: readonly VectorLine[]): Promise<Map<string, Metadata>> {
  const out = new Map<string, Metadata>();
  const ids = new Set(lines.flatMap((line) => (line.source.kind === 'message' ? [line.source.messageId] : [])));
  if (ids.size === 0) return out;
  const unreadable = (cause: unknown): null => {
    if (isMemexError(cause) && ['MEMEX_MESSAGE_NOT_FOUND', 'MEMEX_SESSION_NOT_FOUND', 'MEMEX_SESSION_CORRUPT'].includes(cause.code)) return null;
    throw cause;
  };
  if (ids.size <= READ_ONE_BY_ONE) {
    for (const id of ids) {
      const message = await store.getMessage(userId, sessionId, id).catch(unreadable);
      if (message && Object.keys(message.metadata).length > 0) out.set(id, message.metadata);
    }
    return out;
  }
  try {
    for await (const message of store.streamMessages(userId, sessionId)) {
      if (ids.has(message.id) && Object.keys(message.metadata).length > 0) out.set(message.id, message.metadata);
    }
  } catch (cause) {
    unreadable(cause);
  }
  return out;
}

function grow<T extends Int32Array | Uint32Array | Uint8Array | Float64Array>(column: T, size: number): T {
  const grown = new (column.constructor as new (n: number) => T)(Math.max(size, 1024));
  grown.set(column.subarray(0, Math.min(column.length, size)));
  return grown;
}

function corrupt(message: string, reason: 'corrupt' | 'stale-model' | 'stale-params' = 'corrupt'): MemexError {
  return new MemexError('MEMEX_INDEX_CORRUPT', message, { details: { reason } });
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A session deleted, or one whose files cannot be read, counts as absent: one broken session costs only itself. */
function skipMissing(cause: unknown): null {
  if (isMemexError(cause, 'MEMEX_SESSION_NOT_FOUND') || isMemexError(cause, 'MEMEX_SESSION_CORRUPT') || isMemexError(cause, 'MEMEX_SESSION_ARCHIVED')) return null;
  throw cause;
}

/**
 * Every session of the user with its origin (native or imported), paging through the listing,
 * which leaves out sessions in the trash: their rows leave the index at the sync after they are
 * trashed, and a saved index loaded after a restart drops them at its first sync.
 */
async function listSessions(store: Store, userId: string): Promise<Map<string, IndexedSession['origin']>> {
  const sessions = new Map<string, IndexedSession['origin']>();
  for (let offset = 0; ; ) {
    // Archived sessions leave search: their rows are in the archive (README "Archive and retention").
    const page = await store.listSessions(userId, { limit: 1000, offset, archived: 'exclude' });
    for (const session of page.sessions) sessions.set(session.id, session.origin.kind);
    offset += page.sessions.length;
    if (page.sessions.length === 0 || offset >= page.total) break;
  }
  return sessions;
}
