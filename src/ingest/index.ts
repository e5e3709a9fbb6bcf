export { MessageIndexer, type IndexedCount, type MessageIndexerOptions, type SessionRef } from './message-indexer.js';
export { reindex, type ReindexOptions, type ReindexProgress, type ReindexResult } from './reindex.js';
