export type { Store, SessionPage, MessagePage, PutFileInput, PutFileResult, StoreWarning, UnreadableSession, ListOptions } from './store.js';
export { FlatFileStore, describeWarning, type FlatFileStoreOptions } from './flat-file-store.js';
export { exportSession, exportSessionToString, EXPORT_FORMATS, type ExportFormat } from './export.js';
export { sniffType, type FileSource } from './files.js';
export { NPY_HEADER_BYTES, npyHeader, parseNpyHeader, type NpyShape } from './npy.js';
export type { SessionVectorData, VectorBatch, VectorRepair, VectorStatus } from './session-vectors.js';
export { writeSynced } from './durable.js';
export { FILE_ARTIFACTS, type FileArtifactName } from './layout.js';
export { KeyedMutex } from './serial.js';
