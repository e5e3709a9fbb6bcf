export { Memex, describeWarning, type MemexOptions, type MemexWarning, type SessionMatch, type SessionSearchReport, type TrashListing, type TrashPurge } from './memex.js';
export { HashedEmbedder, TransformersEmbedder, type Embedder, type EmbedOptions } from './embedding/index.js';
export { chunkText, chunkMessage, type ChunkingOptions, type TextPiece } from './chunking/index.js';
export type { ReindexOptions, ReindexProgress, ReindexResult, IngestFileOptions, IngestProgress, IngestPhase, IngestResult, OcrEngine, OcrResult, JobRunner, JobRunnerOptions, JobEvent, JobWork } from './ingest/index.js';
export type { DoctorFinding, DoctorOptions, DoctorProgress, DoctorReport } from './doctor.js';
export type { MaintainOptions, MaintenanceAction, MaintenanceReport, RetentionPolicy } from './maintain.js';
export type { SearchHit, SearchReport, IndexStatus, IndexProgress, IndexWarning, RebuildReason, Reranker, RerankedHit, RerankOptions } from './index/index.js';
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
  type FileContent,
  type FileText,
  type TextUnit,
  type OcrLine,
  type IngestWarning,
  type Summary,
  type SummaryItem,
  type Note,
  type NewNote,
  type NotePatch,
  type ContextOptionsInput,
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
  type SessionSearchOptions,
  type SessionListOptions,
  type SessionSort,
  type Where,
  type WhereOperators,
  type WhereScalar,
  type SearchMode,
  SEARCH_MODES,
  FileTextSchema,
} from './core/index.js';
export {
  modelSummarizer,
  ExtractiveSummarizer,
  tiktokenTokenizer,
  requestTokens,
  messageTokens,
  OPENAI_CHAT_FORMAT,
  type ChatFormat,
  type ChatMessage,
  type ContextOptions,
  type ContextReport,
  type ContextWindow,
  type LeftOut,
  type LeftReason,
  type ModelSummaryRequest,
  type PartReport,
  type RecalledMemory,
  type Summarizer,
  type Tokenizer,
} from './context/index.js';
export type { Store, SessionPage, MessagePage, PutFileInput, PutFileResult, StoreWarning, ListOptions, ExportFormat, FileSource, FileArtifactName, SessionVectorData, VectorStatus, ApiKeyStore, Job, JobQueue } from './store/index.js';
export { extractMemories, type Exchange, type ExtractResult, type MemoryChange } from './memory/index.js';
export { ChatModel, chatModelFromConfig, ReplyFold, type CallOptions, type ChatModelOptions, type StreamOptions, type ChatReply, type ChatRequest, type ChatChunk, type ToolCall, type Usage as ChatUsage } from './llm/index.js';
export { Secret } from './core/index.js';
export { chatTurn, runTurn, type ChatDeps, type ChatError, type ChatEvent, type ChatTurnOptions, type ReplyMetadata, type TurnSpec } from './chat/index.js';
export type { AppendOptions, TagCount, TrashedMessage } from './store/index.js';
export type { ChatInput } from './core/index.js';
