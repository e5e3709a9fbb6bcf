export { Memex, describeWarning, type MemexOptions, type MemexWarning } from './memex.js';
export { HashedEmbedder, TransformersEmbedder, type Embedder, type EmbedOptions } from './embedding/index.js';
export { chunkText, chunkMessage, type ChunkingOptions, type TextPiece } from './chunking/index.js';
export type { ReindexOptions, ReindexProgress, ReindexResult } from './ingest/index.js';
export type { DoctorFinding, DoctorOptions, DoctorProgress, DoctorReport } from './doctor.js';
export type { SearchHit, SearchReport, IndexStatus, IndexProgress, IndexWarning, RebuildReason } from './index/index.js';
export {
  MemexError,
  isMemexError,
  errorCodes,
  loadConfig,
  ROLES,
  type MemexErrorCode,
  type Config,
  type ConfigInput,
  type FsyncPolicy,
  type UserId,
  type SessionId,
  type MessageId,
  type PersonaId,
  type FileId,
  type Profile,
  type SessionSummary,
  type SessionOrigin,
  type Message,
  type Role,
  type AttachmentRef,
  type Persona,
  type FileRecord,
  type Summary,
  type Metadata,
  type NewUser,
  type NewSession,
  type NewMessage,
  type NewPersona,
  type ProfilePatch,
  type SessionPatch,
  type PersonaPatch,
  type PageOptions,
  type Chunk,
  type ChunkSource,
  type VectorLine,
  type EmbeddingModel,
  type SearchOptions,
  type SearchMode,
  SEARCH_MODES,
} from './core/index.js';
export type { Store, SessionPage, MessagePage, PutFileInput, PutFileResult, StoreWarning, ListOptions, ExportFormat, FileSource, SessionVectorData, VectorStatus } from './store/index.js';
