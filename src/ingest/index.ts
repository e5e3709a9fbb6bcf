export { MessageIndexer, type IndexedCount, type MessageIndexerOptions, type SessionRef } from './message-indexer.js';
export { reindex, repairFileRows, type ReindexOptions, type ReindexProgress, type ReindexResult } from './reindex.js';
export { ingestFile, chunksOfFile, INGEST_PHASES, type IngestFileOptions, type IngestParts, type IngestPhase, type IngestProgress, type IngestResult } from './ingest-file.js';
export { TesseractOcr, OcrStopped, type OcrEngine, type OcrResult, type RecognizeOptions } from './ocr.js';
export { JobRunner, type JobEvent, type JobRunnerOptions, type JobWork } from './jobs.js';
