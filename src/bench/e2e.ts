/**
 * The end-to-end part of `memex bench`: the dataset's sessions written through the library into a
 * fresh, temporary data dir (ingest: chunking, embedding, writing), the user's index built and read
 * back, hybrid searches with their query embedding, and context windows with recall; each beside
 * its baseline in the same run (the model alone on the same texts, the query embedding
 * alone).
 */
import type { Config } from '../core/index.js';
import type { Embedder } from '../embedding/index.js';
import { SESSION_OPTIONS } from '../embedding/model-protocol.js';
import { locate, TransformersEmbedder } from '../embedding/transformers.js';
import type { Memex } from '../memex.js';
import type { BenchSession } from './datasets.js';
import { concurrentRate, histogram, latency, timeEach, type Histogram, type Latency } from './measure.js';

export interface E2eResult {
  sessions: number;
  messages: number;
  ingest: {
    seconds: number;
    messagesPerSecond: number;
    /** The model alone embedding the same texts in one call (sorted by length, cut into its batches). */
    modelAlone: { seconds: number; textsPerSecond: number; batchSize: number };
    /** Ingest's rate over the model's: 1 would mean writing and indexing cost nothing. */
    ratio: number;
    /**
     * transformers.js's pipeline called directly on the same texts and batches, as a program without
     * Memex embeds (null for a model that is not one: the hashed fallback), and ingest's rate over it.
     */
    library: { seconds: number; textsPerSecond: number } | null;
    libraryRatio: number | null;
  };
  index: { buildSeconds: number; loadSeconds: number };
  search: Latency & { queries: number; concurrency: number; concurrentQps: number; embedP50Ms: number; histogram: Histogram };
  context: Latency & { windows: number; budget: number; meanTokens: number; maxTokens: number };
}

export interface E2eOptions {
  /** Opens a Memex on a data dir (the configured model and settings). */
  open: (dataDir: string) => Promise<Memex>;
  dataDir: string;
  sessions: BenchSession[];
  questions: string[];
  budget: number;
  concurrency: number;
  onProgress?: (step: string, done: number, total: number) => void;
}

const USER = 'bench';
const CONTEXT_WINDOWS = 50;

export async function benchE2e(options: E2eOptions): Promise<E2eResult> {
  const progress = options.onProgress ?? (() => undefined);
  const messages = options.sessions.reduce((sum, s) => sum + s.messages.length, 0);
  let memex = await options.open(options.dataDir);
  try {
    await memex.users.create({ id: USER, name: 'Benchmark' });
    const embedder = await memex.embedder();
    const batchSize = memex.config.embedding.batchSize;
    const texts = options.sessions.flatMap((s) => s.messages.map((m) => m.content));
    await embedder.embed(texts.slice(0, batchSize), { remember: false });

    // The model alone: the same texts in one call, which the embedder sorts by length and cuts into
    // its batches (the least padding: the model's best rate), none answered from the embedder's
    // memory nor left in it for ingest to find. Timed before the ingest and again after it, the
    // mean taken: a machine that speeds up or slows down during the run weighs on both alike.
    const modelAlone = async (): Promise<number> => {
      progress('model alone', 0, texts.length);
      const start = performance.now();
      await embedder.embed(texts, { remember: false });
      progress('model alone', texts.length, texts.length);
      return (performance.now() - start) / 1000;
    };
    const modelBefore = await modelAlone();

    // Ingest: every session's messages appended, then every row embedded and written.
    progress('ingest', 0, messages);
    const sessionIds: string[] = [];
    let written = 0;
    const ingestStart = performance.now();
    for (const session of options.sessions) {
      const created = await memex.sessions.create(USER, { title: session.title });
      sessionIds.push(created.id);
      await memex.messages.appendMany(USER, created.id, session.messages);
      written += session.messages.length;
      progress('ingest', written, messages);
    }
    await memex.flush();
    const ingestSeconds = (performance.now() - ingestStart) / 1000;
    const modelSeconds = (modelBefore + (await modelAlone())) / 2;
    progress('library alone', 0, texts.length);
    const librarySeconds = await libraryAlone(embedder, memex.config.embedding, texts);
    progress('library alone', texts.length, texts.length);

    // The index: built from the session files, then read back by a fresh instance.
    progress('index', 0, 2);
    let start = performance.now();
    await memex.index.rebuild(USER);
    const buildSeconds = (performance.now() - start) / 1000;
    await memex.close();
    memex = await options.open(options.dataDir);
    start = performance.now();
    await memex.index.prepare(USER);
    const loadSeconds = (performance.now() - start) / 1000;
    progress('index', 2, 2);

    // Search: the query embedding alone, then searches one at a time, then `concurrency` at once.
    // Each pass has its own questions, so no pass finds its query vectors cached by another.
    const questions = options.questions.length > 0 ? options.questions : texts.slice(0, 100);
    const half = Math.max(1, Math.floor(questions.length / 2));
    const sequential = questions.slice(0, half);
    const concurrent = questions.length > 1 ? questions.slice(half) : questions;
    const embedder2 = await memex.embedder();
    const embedOnly = await timeEach(sequential, (q) => embedder2.embed([q], { urgent: true, remember: false }));
    for (const q of concurrent.slice(0, 10)) await memex.search(USER, q);
    progress('search', 0, sequential.length);
    const searched = await timeEach(sequential, (q) => memex.search(USER, q), (done) => progress('search', done, sequential.length));
    const concurrentQps = await concurrentRate(concurrent, options.concurrency, (q) => memex.search(USER, q));

    // Context: windows for sessions spread over the data, each recalling for a question; the first
    // pass also folds older turns into each session's summary, so only the second is timed.
    const windows = Array.from({ length: Math.min(CONTEXT_WINDOWS, sessionIds.length) }, (_, i) => ({
      sessionId: sessionIds[Math.floor((i * sessionIds.length) / Math.min(CONTEXT_WINDOWS, sessionIds.length))] as string,
      query: questions[i % questions.length] as string,
    }));
    const build = (w: (typeof windows)[number]): ReturnType<Memex['buildContext']> => memex.buildContext(USER, { sessionId: w.sessionId, query: w.query, budget: options.budget });
    progress('context', 0, windows.length);
    for (const w of windows) await build(w);
    const tokens: number[] = [];
    const built = await timeEach(
      windows,
      async (w) => tokens.push((await build(w)).report.tokens),
      (done) => progress('context', done, windows.length),
    );
    progress('context', windows.length, windows.length);

    return {
      sessions: options.sessions.length,
      messages,
      ingest: {
        seconds: ingestSeconds,
        messagesPerSecond: messages / ingestSeconds,
        modelAlone: { seconds: modelSeconds, textsPerSecond: texts.length / modelSeconds, batchSize },
        ratio: modelSeconds / ingestSeconds,
        library: librarySeconds === null ? null : { seconds: librarySeconds, textsPerSecond: texts.length / librarySeconds },
        libraryRatio: librarySeconds === null ? null : librarySeconds / ingestSeconds,
      },
      index: { buildSeconds, loadSeconds },
      search: {
        ...latency(searched.latencies, searched.totalMs),
        queries: sequential.length,
        concurrency: options.concurrency,
        concurrentQps,
        embedP50Ms: latency(embedOnly.latencies, embedOnly.totalMs).p50Ms,
        histogram: histogram(searched.latencies),
      },
      context: {
        ...latency(built.latencies, built.totalMs),
        windows: windows.length,
        budget: options.budget,
        meanTokens: tokens.length ? tokens.reduce((a, b) => a + b, 0) / tokens.length : 0,
        maxTokens: tokens.length ? Math.max(...tokens) : 0,
      },
    };
  } finally {
    await memex.close();
  }
}

/**
 * transformers.js's feature-extraction pipeline called as its documentation shows (with the session
 * options Memex uses), in this thread, on the texts sorted by length in batches of `batchSize`: how
 * a program without Memex embeds. The seconds it took; null for an embedder that is not a
 * transformers.js model (the hashed fallback).
 */
async function libraryAlone(embedder: Embedder, config: Config['embedding'], texts: readonly string[]): Promise<number | null> {
  if (!(embedder instanceof TransformersEmbedder) || embedder.modelId !== config.model) return null;
  const location = locate({ model: config.model, modelDir: config.modelDir });
  const { env, pipeline } = await import('@huggingface/transformers');
  env.allowLocalModels = location.root !== null;
  env.allowRemoteModels = location.root === null && config.allowRemote;
  if (location.root !== null) env.localModelPath = `${location.root}/`;
  if (config.cacheDir) env.cacheDir = config.cacheDir;
  // The session options Memex's model thread uses, so the two differ only in what Memex adds.
  const pipe = await pipeline('feature-extraction', location.id, { dtype: 'fp32', session_options: SESSION_OPTIONS });
  try {
    const sorted = texts.filter((text) => text.trim() !== '').sort((a, b) => b.length - a.length);
    const embed = async (batch: string[]): Promise<void> => (await pipe(batch, { pooling: 'mean', normalize: true })).dispose();
    await embed(sorted.slice(0, config.batchSize));
    const start = performance.now();
    for (let at = 0; at < sorted.length; at += config.batchSize) await embed(sorted.slice(at, at + config.batchSize));
    return (performance.now() - start) / 1000;
  } finally {
    await pipe.dispose();
  }
}
