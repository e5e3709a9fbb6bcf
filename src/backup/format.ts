import { z } from 'zod';
import {
  ChunkSchema,
  EmbeddingModelSchema,
  FileRecordSchema,
  MessageSchema,
  ImportRecordSchema,
  NoteSchema,
  PersonaSchema,
  ProfileSchema,
  SessionIdSchema,
  SessionMetaSchema,
  SummarySchema,
  TimestampSchema,
  UserIdSchema,
} from '../core/index.js';
import { FILE_ARTIFACTS } from '../store/index.js';

/**
 * A backup is one ZIP:
 *
 * ```
 * manifest.json                         what is inside (below), written last
 * manifest.sha256                       sha256 of manifest.json's bytes
 * users/<userId>/user.json              profile, personas, notes, import records
 * users/<userId>/sessions/<id>/session.json    the whole session meta, its summary, its files' records, its vectors' model
 * users/<userId>/sessions/<id>/messages.jsonl  every message as stored, oldest first
 * users/<userId>/sessions/<id>/vectors.jsonl   one line per row: the chunk and its float32 row (base64), in row order
 * users/<userId>/sessions/<id>/trashed.jsonl   its trashed messages (when it has any), oldest trashed first: each with its place and rows
 * users/<userId>/sessions/<id>/files/<fileId>              the file's bytes
 * users/<userId>/sessions/<id>/files/<fileId>.<artifact>   what ingest derived (text.json, thumbnails)
 * ```
 *
 * Ids are validated before they name an entry, and a restore reads only entries it names itself,
 * so an entry name is never a path on disk.
 */
export const BACKUP_FORMAT = 'memex-backup';
export const BACKUP_FORMAT_VERSION = 1;
export const MANIFEST_ENTRY = 'manifest.json';
export const MANIFEST_SHA_ENTRY = 'manifest.sha256';

export const userEntry = (userId: string): string => `users/${userId}/user.json`;
const sessionDir = (userId: string, sessionId: string): string => `users/${userId}/sessions/${sessionId}`;
export const sessionEntry = (userId: string, sessionId: string): string => `${sessionDir(userId, sessionId)}/session.json`;
export const messagesEntry = (userId: string, sessionId: string): string => `${sessionDir(userId, sessionId)}/messages.jsonl`;
export const vectorsEntry = (userId: string, sessionId: string): string => `${sessionDir(userId, sessionId)}/vectors.jsonl`;
export const trashedEntry = (userId: string, sessionId: string): string => `${sessionDir(userId, sessionId)}/trashed.jsonl`;
export const fileEntry = (userId: string, sessionId: string, fileId: string): string => `${sessionDir(userId, sessionId)}/files/${fileId}`;
export const artifactEntry = (userId: string, sessionId: string, fileId: string, artifact: string): string => `${fileEntry(userId, sessionId, fileId)}.${artifact}`;

export const BackupCountsSchema = z.object({
  users: z.number().int().nonnegative(),
  personas: z.number().int().nonnegative(),
  notes: z.number().int().nonnegative(),
  imports: z.number().int().nonnegative(),
  sessions: z.number().int().nonnegative(),
  messages: z.number().int().nonnegative(),
  files: z.number().int().nonnegative(),
  fileBytes: z.number().int().nonnegative(),
  artifacts: z.number().int().nonnegative(),
  summaries: z.number().int().nonnegative(),
  vectorRows: z.number().int().nonnegative(),
});
export type BackupCounts = z.infer<typeof BackupCountsSchema>;

export const zeroCounts = (): BackupCounts => ({ users: 0, personas: 0, notes: 0, imports: 0, sessions: 0, messages: 0, files: 0, fileBytes: 0, artifacts: 0, summaries: 0, vectorRows: 0 });

export const ManifestEntrySchema = z.object({ name: z.string().min(1).max(1024), size: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) });
export type ManifestEntry = z.infer<typeof ManifestEntrySchema>;

export const BackupManifestSchema = z.object({
  format: z.literal(BACKUP_FORMAT),
  v: z.number().int().positive(),
  memexVersion: z.string(),
  createdAt: TimestampSchema,
  /** One user's data (`memex backup --user`, `GET /v1/backup`) or the whole store. */
  scope: z.discriminatedUnion('kind', [z.object({ kind: z.literal('user'), userId: UserIdSchema }), z.object({ kind: z.literal('all') })]),
  /** The model of the vector rows inside; null when the store had none recorded. */
  model: EmbeddingModelSchema.nullable(),
  counts: BackupCountsSchema,
  users: z.array(z.object({ id: UserIdSchema, sessions: z.array(SessionIdSchema) })),
  /** Every other entry of the ZIP with its size and sha256; a restore refuses any difference. */
  entries: z.array(ManifestEntrySchema),
});
export type BackupManifest = z.infer<typeof BackupManifestSchema>;

export const UserRecordSchema = z.object({
  profile: ProfileSchema,
  personas: z.array(PersonaSchema),
  notes: z.array(NoteSchema),
  imports: z.array(ImportRecordSchema),
});
export type UserRecord = z.infer<typeof UserRecordSchema>;

/**
 * The session is the store's whole meta object, so fields added to sessions later travel without
 * this format naming them (`.loose()` keeps keys a newer schema knows and this one does not).
 */
export const SessionRecordSchema = z.object({
  session: SessionMetaSchema.omit({ v: true, messagesBytes: true }).loose(),
  summary: SummarySchema.nullable(),
  files: z.array(z.object({ record: FileRecordSchema, artifacts: z.array(z.enum(FILE_ARTIFACTS)) })),
  vectors: z.object({ rows: z.number().int().nonnegative(), model: z.string().nullable(), dimension: z.number().int().positive().nullable() }),
});
export type SessionRecord = z.infer<typeof SessionRecordSchema>;

/** One row of `vectors.jsonl`: the chunk as stored, and its float32 row as base64 (little-endian). */
export const VectorRowSchema = ChunkSchema.extend({ vector: z.string() });
export type VectorRow = z.infer<typeof VectorRowSchema>;

/** One line of `trashed.jsonl`: a trashed message as `Store.readTrashedMessages` gives it, its rows as in `vectors.jsonl`. */
export const TrashedRowSchema = z.object({
  message: MessageSchema,
  trashedAt: TimestampSchema,
  after: z.string().nullable(),
  index: z.number().int().nonnegative(),
  summary: SummarySchema.nullable(),
  model: z.string().nullable(),
  rows: z.array(VectorRowSchema),
});
export type TrashedRow = z.infer<typeof TrashedRowSchema>;
