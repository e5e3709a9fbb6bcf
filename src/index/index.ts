export { Recall, type IndexStatus, type IndexWarning, type RecallOptions } from './recall.js';
export type { SearchHit, SearchReport } from './search.js';
export type { IndexProgress, RebuildReason } from './user-index.js';
export { HnswVectorIndex, DEFAULT_HNSW, type HnswParams } from './hnsw.js';
export { ExactVectorIndex, type VectorIndex, type Neighbor } from './vector-index.js';
export { LexicalIndex, DEFAULT_BM25, type Bm25Params } from './lexical.js';
export { hnswlib, type HnswlibBuild } from './native.js';
