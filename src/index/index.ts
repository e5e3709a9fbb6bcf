export { Recall, type RecallOptions } from './recall.js';
export type { SearchBackend, SearchQuery, BackendOptions, SearchHit, SearchReport, SearchSettings, IndexStatus, IndexProgress } from './backend.js';
export { searchSettings } from './backend.js';
export { FlatSearch, type FlatSearchOptions, type IndexWarning } from './flat/flat-search.js';
export type { RebuildReason } from './flat/user-index.js';
export { HnswVectorIndex, DEFAULT_HNSW, type HnswParams } from './hnsw.js';
export { ExactVectorIndex, type VectorIndex, type Neighbor } from './vector-index.js';
export { LexicalIndex, DEFAULT_BM25, type Bm25Params } from './lexical.js';
export { hnswlib, type HnswlibBuild } from './native.js';
