import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { PreTrainedTokenizer } from '@huggingface/transformers';
import { MemexError } from '../core/index.js';
import { allocateRows, assertTexts, isBlank, normalizeInPlace, throwIfAborted, type EmbedOptions, type Embedder } from './embedder.js';
import type { TextPiece } from '../chunking/index.js';
import { ModelThread, transformersUrl, type Embedded } from './model-thread.js';

export interface TransformersEmbedderOptions {
  /** A model id on the hub (`Xenova/all-MiniLM-L6-v2`) or under `modelDir`. */
  model: string;
  /** A local folder in transformers.js layout; when set nothing is fetched. See config `embedding.modelDir`. */
  modelDir?: string | null;
  cacheDir?: string | null;
  allowRemote?: boolean;
  batchSize?: number;
}

/** Where a model is read from, resolved once: transformers.js looks for `<root>/<id>/config.json`. */
export interface ModelLocation {
  root: string | null;
  id: string;
}

export function locate(options: TransformersEmbedderOptions): ModelLocation {
  const { modelDir, model } = options;
  if (!modelDir) return { root: null, id: model };
  if (existsSync(join(modelDir, model, 'config.json'))) return { root: modelDir, id: model };
  // MEMEX_MODEL_DIR may name the model folder itself.
  if (existsSync(join(modelDir, 'config.json'))) return { root: dirname(modelDir), id: basename(modelDir) };
  throw new MemexError('MEMEX_MODEL_UNAVAILABLE', `no model "${model}" in ${modelDir}: neither ${join(modelDir, model, 'config.json')} nor ${join(modelDir, 'config.json')} exists`, {
    details: { model, modelDir },
  });
}

/**
 * transformers.js keeps its settings in one global `env`, so loads run one at a time, each setting
 * what it needs; a loaded pipeline keeps its files and no longer reads `env`.
 */
let loadQueue: Promise<unknown> = Promise.resolve();
const loaded = new Map<string, Promise<TransformersEmbedder>>();

/** Texts up to this long are remembered with their rows (a chat turn's text is a query, then a chunk). */
const MEMO_MAX_CHARS = 2000;
const MEMO_ENTRIES = 512;

/**
 * Sentence embeddings from a transformers.js feature-extraction pipeline (ONNX Runtime on the CPU),
 * mean-pooled and L2-normalised. The model runs in a thread of its own (model-thread.ts); this
 * thread keeps only its tokenizer, for `countTokens`. One instance per model per process: `load`
 * shares it.
 *
 * The rows of the last few hundred short texts are remembered: a chat turn's text is embedded as
 * the window's query, then again as the stored message's chunk, and the second costs nothing.
 */
export class TransformersEmbedder implements Embedder {
  private readonly specialTokens: number;
  private readonly memo = new Map<string, { row: Float32Array; tokens: number }>();

  private constructor(
    readonly modelId: string,
    readonly dimension: number,
    private readonly tokenizer: PreTrainedTokenizer,
    private readonly thread: ModelThread,
    /** The most tokens the model reads, as its thread cuts input (model-worker.ts). */
    readonly maxTokens: number,
    private readonly batchSize: number,
  ) {
    this.specialTokens = tokenizer.encode('').length;
  }

  /** Loads the model once per process; later calls with the same options share it. */
  static load(options: TransformersEmbedderOptions): Promise<TransformersEmbedder> {
    const key = JSON.stringify([options.model, options.modelDir ?? null, options.cacheDir ?? null, options.batchSize ?? 32]);
    let loading = loaded.get(key);
    if (!loading) {
      loading = loadQueue.then(() => TransformersEmbedder.create(options));
      loadQueue = loading.catch(() => undefined);
      loaded.set(key, loading);
      // A failed load is not cached: the next call tries again (say, once the network is back).
      loading.catch(() => loaded.delete(key));
    }
    return loading;
  }

  private static async create(options: TransformersEmbedderOptions): Promise<TransformersEmbedder> {
    const location = locate(options);
    const { env, AutoTokenizer } = await import('@huggingface/transformers');
    env.allowLocalModels = location.root !== null;
    env.allowRemoteModels = location.root === null && options.allowRemote !== false;
    if (location.root !== null) env.localModelPath = `${location.root}/`;
    env.cacheDir = options.cacheDir ?? join(homedir(), '.cache', 'memex', 'models');
    const thread = new ModelThread({ root: location.root, id: location.id, cacheDir: env.cacheDir, allowRemote: env.allowRemoteModels, transformersUrl: transformersUrl() });
    try {
      // The model loads in its thread while the tokenizer loads here.
      const [info, tokenizer] = await Promise.all([thread.start(), AutoTokenizer.from_pretrained(location.id)]);
      return new TransformersEmbedder(options.model, info.dimension, tokenizer, thread, info.maxTokens, options.batchSize ?? 32);
    } catch (cause) {
      await thread.close();
      if (cause instanceof MemexError) throw cause;
      const where = location.root ? `from ${location.root}` : env.allowRemoteModels ? 'from the cache or the hub' : 'from the cache (downloads are off)';
      const reason = cause instanceof Error ? cause.message : String(cause);
      throw new MemexError('MEMEX_MODEL_UNAVAILABLE', `cannot load embedding model ${options.model} ${where}: ${reason}`, {
        cause,
        details: { model: options.model, modelDir: options.modelDir ?? null },
      });
    }
  }

  countTokens(text: string): number {
    return text === '' ? this.specialTokens : this.tokenizer.encode(text).length;
  }

  /** Chunked in the model's thread, with its copy of the tokenizer (the same counts as `countTokens`). */
  chunk(texts: readonly string[], sizes: { maxTokens: number; overlapTokens: number; lines: boolean }): Promise<TextPiece[][]> {
    return this.thread.chunk(texts, sizes);
  }

  async embed(texts: readonly string[], options: EmbedOptions = {}): Promise<Float32Array[]> {
    assertTexts(texts);
    throwIfAborted(options.signal);
    const rows = allocateRows(texts.length, this.dimension);
    const remember = options.remember !== false;
    const counts = options.tokens;
    // Longest first, so each batch pads its texts to a similar length instead of to one outlier.
    const order = texts
      .map((text, index) => ({ text, index }))
      .filter(({ text, index }) => !isBlank(text) && !(remember && this.recall(text, rows[index] as Float32Array, counts, index)))
      .sort((a, b) => b.text.length - a.text.length);
    const urgent = options.urgent === true;
    // Two batches asked for at a time: the model thread has the next one when it finishes one.
    const batches: (typeof order)[] = [];
    for (let begin = 0; begin < order.length; begin += this.batchSize) batches.push(order.slice(begin, begin + this.batchSize));
    const ask = (at: number): Promise<Embedded> | null => {
      const batch = batches[at];
      if (!batch) return null;
      const asked = this.thread.run(
        batch.map((item) => item.text),
        urgent,
      );
      asked.catch(() => undefined); // awaited below, unless an earlier batch failed or the call was aborted
      return asked;
    };
    let next = ask(0);
    for (const [at, batch] of batches.entries()) {
      throwIfAborted(options.signal);
      const asked = next as Promise<Embedded>;
      next = ask(at + 1);
      const { data, tokens } = await asked;
      for (const [j, item] of batch.entries()) {
        const row = rows[item.index] as Float32Array;
        row.set(data.subarray(j * this.dimension, (j + 1) * this.dimension));
        normalizeInPlace(row);
        const count = tokens[j] as number;
        if (counts && item.index < counts.length) counts[item.index] = count;
        if (remember) this.keep(item.text, row, count);
      }
    }
    return rows;
  }

  /** Copies the remembered row of `text` into `row` (and its count into `counts[index]`); false when there is none. */
  private recall(text: string, row: Float32Array, counts: Int32Array | undefined, index: number): boolean {
    const known = this.memo.get(text);
    if (!known) return false;
    row.set(known.row);
    if (counts && index < counts.length) counts[index] = known.tokens;
    return true;
  }

  private keep(text: string, row: Float32Array, tokens: number): void {
    if (text.length > MEMO_MAX_CHARS) return;
    if (this.memo.size >= MEMO_ENTRIES) this.memo.delete(this.memo.keys().next().value as string);
    this.memo.set(text, { row: Float32Array.from(row), tokens });
  }
}
