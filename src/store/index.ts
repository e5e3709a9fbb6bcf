export type { Store, SessionPage, MessagePage, PutFileInput, PutFileResult, StoreWarning, UnreadableSession, ListOptions } from './store.js';
export { FlatFileStore, describeWarning, type FlatFileStoreOptions } from './flat-file-store.js';
export { exportSession, exportSessionToString, EXPORT_FORMATS, type ExportFormat } from './export.js';
export { sniffType, type FileSource } from './files.js';
