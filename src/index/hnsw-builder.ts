import { rm } from 'node:fs/promises';
import type { Worker } from 'node:worker_threads';
import { MemexError } from '../core/index.js';
import { startWorker } from '../core/worker.js';
import { HnswVectorIndex, type HnswParams } from './hnsw.js';

export interface BuildSetup {
  dimension: number;
  params: HnswParams;
  capacity: number;
  /**
   * Threads adding rows at once (Memex's graph addon only; hnswlib-node adds one row at a time). One
   * gives the graph a build in the caller's thread gives.
   */
  threads: number;
}

export type BuildRequest = { kind: 'add'; labels: Uint32Array; vectors: Float32Array } | { kind: 'finish'; path: string };
export type BuildReply = { kind: 'added'; rows: number } | { kind: 'written' } | { kind: 'failed'; message: string };

/** Rows sent to the thread at a time: enough to keep several threads adding. */
const BATCH = 4096;
/** Batches sent and not yet added, at most: the rows wait in the caller's memory, not the thread's queue. */
const IN_FLIGHT = 4;

/**
 * An HNSW graph built in a worker thread. Adding a row to the graph is most of the cost of building
 * a user's index (about a millisecond a row at 512-d): here it runs beside the caller, whose event
 * loop stays free (a service keeps answering, the same process reads the next session's rows).
 * With Memex's graph addon (native/hnsw.cc) `threads` threads add each batch's rows at once,
 * as hnswlib allows; the graph then depends on how they interleave, and reaches the same recall.
 * With one thread, or without the addon, it is the one a build in the caller's thread
 * gives: the same rows in the same order, the same seed.
 */
export class HnswBuilder {
  private readonly worker: Worker;
  private labels: Uint32Array;
  private vectors: Float32Array;
  private filled = 0;
  private inFlight = 0;
  private failure: Error | null = null;
  private waiting: (() => void)[] = [];
  private readonly added: number[] = [];

  constructor(private readonly setup: BuildSetup) {
    this.worker = startWorker(import.meta.url, 'hnsw-build-worker', setup);
    this.labels = new Uint32Array(BATCH);
    this.vectors = new Float32Array(BATCH * setup.dimension);
    this.worker.on('message', (reply: BuildReply) => {
      if (reply.kind === 'failed') this.fail(new Error(reply.message));
      else this.inFlight--;
      this.wake();
    });
    this.worker.on('error', (error) => this.fail(error));
    this.worker.on('exit', (code) => this.fail(new Error(`the HNSW build thread ended (exit code ${code})`)));
  }

  /** Queues a row; `room()` waits until the thread has taken enough of them. */
  add(label: number, vector: Float32Array): void {
    if (this.failure) return;
    this.labels[this.filled] = label;
    this.vectors.set(vector, this.filled * this.setup.dimension);
    this.added.push(label);
    if (++this.filled === BATCH) this.send();
  }

  /** Resolves once few enough batches wait in the thread (at once if the build failed: `finish` reports it). */
  async room(): Promise<void> {
    await this.until(IN_FLIGHT - 1).catch(() => undefined);
  }

  /** Adds what is left, writes the graph to `path`, reads it back here, and ends the thread. */
  async finish(path: string): Promise<HnswVectorIndex> {
    try {
      if (this.filled > 0) this.send();
      await this.until(0);
      this.inFlight++;
      this.worker.postMessage({ kind: 'finish', path } satisfies BuildRequest);
      await this.until(0);
      return HnswVectorIndex.read(path, this.setup.dimension, this.setup.params, this.added);
    } finally {
      await this.close();
      await rm(path, { force: true });
    }
  }

  /** Ends the thread; a build not finished by then fails. */
  async close(): Promise<void> {
    this.worker.removeAllListeners('exit');
    this.fail(new Error('the build was closed before it finished'));
    await this.worker.terminate();
  }

  /** Waits until at most `most` requests are unanswered; rejects once the build failed. */
  private async until(most: number): Promise<void> {
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.inFlight <= most) return;
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
  }

  private send(): void {
    const labels = this.labels.slice(0, this.filled);
    const vectors = this.vectors.slice(0, this.filled * this.setup.dimension);
    this.inFlight++;
    this.worker.postMessage({ kind: 'add', labels, vectors } satisfies BuildRequest, [labels.buffer, vectors.buffer]);
    this.filled = 0;
  }

  private fail(error: Error): void {
    this.failure ??= new MemexError('MEMEX_INTERNAL', `building the HNSW graph in its thread failed: ${error.message}`, { cause: error });
    this.wake();
  }

  private wake(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve();
  }
}
