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

/**
 * Bulk requests (ingest's batches, chunking) sent to the thread before the one under way is answered:
 * with two, the model starts the next batch the moment it finishes one, never waiting for this
 * thread to take the answer and send more (a busy event loop answered late).
 */
const BULK_IN_FLIGHT = 2;

/** Rows of texts, row-major, and each text's length in the model's tokens. */
export interface Embedded {
  data: Float32Array;
  tokens: Int32Array;
}

/** Texts to embed (rows back), or to chunk with the model's tokenizer (pieces back). */
type Job =
  | { kind: 'embed'; texts: readonly string[]; urgent: boolean; resolve: (rows: Embedded) => void; reject: (error: Error) => void }
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
 * Queries (urgent: someone waits) are sent at once; the thread runs them before the bulk requests
 * it holds (ingest), with the other queries waiting beside them as one batch, so a search waits for
 * at most the batch under way. Bulk requests go BULK_IN_FLIGHT at a time, the rest queued here in
 * order. The thread keeps the process alive only while it has work. If it dies, the work in hand
 * fails with MEMEX_MODEL_UNAVAILABLE and the next request starts a new one.
 */
export class ModelThread {
  private worker: Worker | null = null;
  private ready: Promise<ModelInfo> | null = null;
  /** Bulk jobs not sent yet. */
  private readonly queue: Job[] = [];
  /** Jobs sent and not answered, by request id. */
  private readonly sent = new Map<number, Job>();
  private bulkSent = 0;
  private nextId = 0;
  /** Model runs the thread has made (queries run together count once), for tests and benchmarks. */
  runs = 0;

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
      const job: Job = { kind: 'embed', texts, urgent, resolve, reject };
      if (urgent) this.send(job);
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
    while (this.bulkSent < BULK_IN_FLIGHT && this.queue.length > 0) this.send(this.queue.shift() as Job);
  }

  private send(job: Job): void {
    const id = ++this.nextId;
    this.sent.set(id, job);
    if (!isUrgent(job)) this.bulkSent++;
    this.start().then(
      () => {
        if (this.sent.get(id) !== job) return; // the thread died meanwhile
        this.worker?.ref();
        if (job.kind === 'chunk') this.worker?.postMessage({ kind: 'chunk', id, texts: job.texts, chunking: job.chunking });
        else this.worker?.postMessage({ kind: 'embed', id, texts: job.texts, urgent: job.urgent });
      },
      (cause: unknown) => this.finish(id, null, cause),
    );
  }

  private settle(message: Extract<ModelReply, { type: 'rows' | 'pieces' | 'error' }>): void {
    if (message.type === 'rows') {
      this.runs = Math.max(this.runs, message.run);
      this.finish(message.id, { data: message.data, tokens: message.tokens }, null);
    } else if (message.type === 'pieces') this.finish(message.id, message.pieces, null);
    else this.finish(message.id, null, new Error(message.message));
  }

  private finish(id: number, result: Embedded | TextPiece[][] | null, cause: unknown): void {
    const job = this.sent.get(id);
    if (!job) return;
    this.sent.delete(id);
    if (!isUrgent(job)) this.bulkSent--;
    if (result === null) job.reject(unavailable(this.options.id, cause));
    else if (job.kind === 'chunk') job.resolve(result as TextPiece[][]);
    else job.resolve(result as Embedded);
    this.pump();
    this.idle();
  }

  /** No work: the thread must not keep the process alive. */
  private idle(): void {
    if (this.sent.size === 0 && this.queue.length === 0) this.worker?.unref();
  }

  private stopped(worker: Worker, cause: unknown): void {
    if (this.worker !== worker) return;
    this.worker = null;
    this.ready = null;
    const jobs = [...this.sent.values(), ...this.queue.splice(0)];
    this.sent.clear();
    this.bulkSent = 0;
    for (const job of jobs) job.reject(unavailable(this.options.id, cause));
  }
}

function isUrgent(job: Job): boolean {
  return job.kind === 'embed' && job.urgent;
}

function unavailable(model: string, cause: unknown): MemexError {
  if (cause instanceof MemexError) return cause;
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new MemexError('MEMEX_MODEL_UNAVAILABLE', `embedding with ${model} failed: ${reason}`, { cause, details: { model } });
}
