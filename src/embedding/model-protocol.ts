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

export interface ModelRequest {
  id: number;
  texts: readonly string[];
}

export type ModelReply =
  | { type: 'ready'; dimension: number; dims: number[]; maxPositionEmbeddings: number | null }
  | { type: 'failed'; message: string }
  /** `texts.length` rows of `dimension` floats, row-major. */
  | { type: 'rows'; id: number; data: Float32Array }
  | { type: 'error'; id: number; message: string };
