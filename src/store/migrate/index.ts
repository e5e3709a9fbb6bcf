export { migrateStore, toNewMessage, DEFAULT_MESSAGE_BATCH, DEFAULT_VECTOR_WINDOW, type MigrateCounts, type MigrateOptions, type MigrateProgress, type MigrateResult } from './migrate.js';
export { digestSession, digestUser, type SessionDigest } from './verify.js';
