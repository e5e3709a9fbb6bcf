import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { MemexError } from '../core/index.js';
import { startWorker as startThread } from '../core/worker.js';
import type { TextPiece } from '../chunking/index.js';
import type { ModelReply, ModelThreadOptions, OffloadedChunking } from './model-protocol.js';

const require = createRequire(import.meta.url);

export interface ModelInfo {
  dimension: number;
  /** The most tokens the model reads: its thread cuts longer input there. */
  maxTokens: number;
}

/** Queries batched into one model run, at most this many texts. */
const URGENT_BATCH = 32;

/** What one request to the thread carries: one job, or several queries together. */
interface Batch {
  jobs: Job[];
  id: number;
}

/** Rows of texts, row-major, and each text's length in the model's tokens. */
export interface Embedded {
  data: Float32Array;
  tokens: Int32Array;
}

/** Texts to embed (rows back), or to chunk with the model's tokenizer (pieces back). */
type Job =
  | { kind: 'embed'; texts: readonly string[]; resolve: (rows: Embedded) => void; reject: (error: Error) => void }
  | { kind: 'chunk'; texts: readonly string[]; chunking: OffloadedChunking; resolve: (pieces: TextPiece[][]) => void; reject: (error: Error) => void };

/** transformers.js's ES module, for the thread to import (`require.resolve` finds its CommonJS twin). */
export function transformersUrl(): string {
  return pathToFileURL(require.resolve('@huggingface/transformers').replace(/\.cjs$/, '.mjs')).href;
}

function startWorker(options: ModelThreadOptions): Worker {
  return startThread(import.meta.url, 'model-worker', options);
}

/**
 * An embedding model in a worker thread of its own. ONNX Runtime's Node binding runs inference
 * synchronously on the calling thread: in the caller's thread every batch would stall its event
 * loop (a 32-message batch for 100 ms and more, the service's other requests and a chat's stream
 * with it). Here the caller only posts texts and receives rows.
 *
 * One request runs at a time; urgent ones (a query someone waits for) go before queued bulk
 * batches (ingest), so a search waits for at most the batch under way, and queries waiting
 * together run as one batch. The thread keeps the process
 * alive only while it has work. If it dies, the work in hand fails with MEMEX_MODEL_UNAVAILABLE and
 * the next request starts a new one.
 */
export class ModelThread {
  private worker: Worker | null = null;
  private ready: Promise<ModelInfo> | null = null;
  private readonly queue: Job[] = [];
  private urgentCount = 0;
  private running: Batch | null = null;
  private nextId = 0;
  /** Requests sent to the thread (each one model run), for tests and benchmarks. */
  requests = 0;

  constructor(private readonly options: ModelThreadOptions) {}

  /** Starts the thread and loads the model (once; again after the thread died). */
  start(): Promise<ModelInfo> {
    if (this.ready) return this.ready;
    const worker = startWorker(this.options);
    this.worker = worker;
    const ready = new Promise<ModelInfo>((resolve, reject) => {
      const onMessage = (message: ModelReply): void => {
        if (message.type === 'ready') {
          if (message.dimension <= 0) {
            reject(new MemexError('MEMEX_MODEL_UNAVAILABLE', `model ${this.options.id} gave output of shape [${message.dims.join(', ')}]`));
            void worker.terminate();
            return;
          }
          resolve({ dimension: message.dimension, maxTokens: message.maxTokens });
        } else if (message.type === 'failed') reject(new Error(message.message));
        else this.settle(message);
      };
      worker.on('message', onMessage);
      worker.on('error', (cause) => {
        reject(cause);
        this.stopped(worker, cause);
      });
      worker.on('exit', (code) => {
        reject(new Error(`the model thread exited (code ${code}) while loading`));
        this.stopped(worker, new Error(`the embedding model's thread exited (code ${code})`));
      });
    });
    this.ready = ready;
    ready.then(
      () => this.idle(),
      () => undefined,
    );
    return ready;
  }

  /** The rows of `texts`, row-major, with their lengths in tokens. */
  run(texts: readonly string[], urgent = false): Promise<Embedded> {
    return new Promise<Embedded>((resolve, reject) => {
      const job: Job = { kind: 'embed', texts, resolve, reject };
      if (urgent) this.queue.splice(this.urgentCount++, 0, job);
      else this.queue.push(job);
      this.pump();
    });
  }

  /** `texts` chunked by chunking/chunk-text.ts with the model's tokenizer, in the thread; queued like bulk embedding. */
  chunk(texts: readonly string[], chunking: OffloadedChunking): Promise<TextPiece[][]> {
    return new Promise<TextPiece[][]>((resolve, reject) => {
      this.queue.push({ kind: 'chunk', texts, chunking, resolve, reject });
      this.pump();
    });
  }

  /** Ends the thread (work in hand fails); a later request starts another. */
  async close(): Promise<void> {
    const worker = this.worker;
    if (worker) await worker.terminate();
  }

  private pump(): void {
    if (this.running || this.queue.length === 0) return;
    // Queries waiting together go as one batch: one model run instead of one each.
    let urgent = 0;
    let texts = 0;
    while (urgent < this.urgentCount && texts + (this.queue[urgent] as Job).texts.length <= URGENT_BATCH) texts += (this.queue[urgent++] as Job).texts.length;
    const jobs = this.queue.splice(0, Math.max(1, urgent));
    this.urgentCount = Math.max(0, this.urgentCount - jobs.length);
    const batch: Batch = { jobs, id: ++this.nextId };
    this.running = batch;
    this.start().then(
      () => {
        if (this.running !== batch) return;
        this.worker?.ref();
        this.requests++;
        const first = jobs[0] as Job;
        if (first.kind === 'chunk') this.worker?.postMessage({ kind: 'chunk', id: batch.id, texts: first.texts, chunking: first.chunking });
        else this.worker?.postMessage({ kind: 'embed', id: batch.id, texts: jobs.length === 1 ? first.texts : jobs.flatMap((job) => job.texts) });
      },
      (cause: unknown) => this.finish(batch, null, cause),
    );
  }

  private settle(message: Extract<ModelReply, { type: 'rows' | 'pieces' | 'error' }>): void {
    const batch = this.running;
    if (!batch || message.id !== batch.id) return;
    if (message.type === 'rows') this.finish(batch, { data: message.data, tokens: message.tokens }, null);
    else if (message.type === 'pieces') this.finish(batch, message.pieces, null);
    else this.finish(batch, null, new Error(message.message));
  }

  private finish(batch: Batch, result: Embedded | TextPiece[][] | null, cause: unknown): void {
    if (this.running === batch) this.running = null;
    const only = batch.jobs[0] as Job;
    if (Array.isArray(result)) {
      if (only.kind === 'chunk') only.resolve(result);
    } else if (result && batch.jobs.length === 1) {
      if (only.kind === 'embed') only.resolve(result);
    } else if (result) {
      const { data, tokens } = result;
      const total = batch.jobs.reduce((sum, job) => sum + job.texts.length, 0);
      const dimension = total === 0 ? 0 : data.length / total;
      let at = 0;
      // Only queries are batched together, so every job here is an embedding.
      for (const job of batch.jobs) {
        const end = at + job.texts.length;
        if (job.kind === 'embed') job.resolve({ data: data.slice(at * dimension, end * dimension), tokens: tokens.slice(at, end) });
        at = end;
      }
    } else for (const job of batch.jobs) job.reject(unavailable(this.options.id, cause));
    if (this.queue.length > 0) this.pump();
    else this.idle();
  }

  /** No work: the thread must not keep the process alive. */
  private idle(): void {
    if (!this.running && this.queue.length === 0) this.worker?.unref();
  }

  private stopped(worker: Worker, cause: unknown): void {
    if (this.worker !== worker) return;
    this.worker = null;
    this.ready = null;
    const jobs = [...(this.running ? this.running.jobs : []), ...this.queue.splice(0)];
    this.running = null;
    this.urgentCount = 0;
    for (const job of jobs) job.reject(unavailable(this.options.id, cause));
  }
}

function unavailable(model: string, cause: unknown): MemexError {
  if (cause instanceof MemexError) return cause;
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new MemexError('MEMEX_MODEL_UNAVAILABLE', `embedding with ${model} failed: ${reason}`, { cause, details: { model } });
}
