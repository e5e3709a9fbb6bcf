import type { TextPiece } from '../chunking/index.js';

/** What the caller's thread and the model's thread (model-worker.ts) say to each other. */

export interface ModelThreadOptions {
  /** The folder holding `<id>/config.json`; null to read the cache or the hub. */
  root: string | null;
  id: string;
  cacheDir: string;
  allowRemote: boolean;
  /** transformers.js, resolved by the caller: the thread's own resolution may start elsewhere. */
  transformersUrl: string;
}

/**
 * Embed `texts` (`urgent`: a query someone waits for, run before bulk requests the thread holds, and
 * with the other queries waiting beside it); or chunk them with the model's tokenizer
 * (chunking/chunk-text.ts), here instead of the caller's thread.
 */
export type ModelRequest =
  | { kind: 'embed'; id: number; texts: readonly string[]; urgent: boolean }
  | { kind: 'chunk'; id: number; texts: readonly string[]; chunking: OffloadedChunking };

/** What chunking needs beside the token counter, which the model's thread has. */
export interface OffloadedChunking {
  maxTokens: number;
  overlapTokens: number;
  lines: boolean;
}

export type ModelReply =
  /** `maxTokens`: the least of the tokenizer's `model_max_length`, the model's positions and 8,192; input is cut there. */
  | { type: 'ready'; dimension: number; dims: number[]; maxTokens: number }
  | { type: 'failed'; message: string }
  /** `texts.length` rows of `dimension` floats, row-major, and each text's length in tokens; `run` counts the thread's model runs. */
  | { type: 'rows'; id: number; data: Float32Array; tokens: Int32Array; run: number }
  /** One list of pieces per text, in order. */
  | { type: 'pieces'; id: number; pieces: TextPiece[][] }
  | { type: 'error'; id: number; message: string };

/**
 * ONNX Runtime's session options for the model: its threads do not spin between runs (its default
 * keeps a core busy waiting for the next one; on a small machine that took the CPU the rest of the
 * process needed).
 */
export const SESSION_OPTIONS = { extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } } };
