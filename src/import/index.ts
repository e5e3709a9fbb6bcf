// Importing chat exports (ChatGPT, Claude, Gemini, Memex) as imported sessions.

export { runImport, messageIdFor, IMPORT_STALE_MS, type ImportDeps, type ImportOptions, type ImportProgress, type ImportReport, type ConversationOutcome } from './run.js';
export { openExport, type ExportReader, type ExportDocument, type OpenExportOptions } from './read.js';
export { PARSERS } from './parsers.js';
export { DEFAULT_ZIP_LIMITS, ZipArchive, type ZipLimits } from './zip.js';
export type * from './model.js';
export { EXPORT_SOURCES, FORMAT_SOURCE } from './model.js';
export { ImportJobs, type ImportJobEvent, type ImportJobsDeps, type ImportJobsOptions, type StartImportOptions } from './jobs.js';
