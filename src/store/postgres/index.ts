// The PostgreSQL backend: the Store over PostgreSQL + pgvector, its schema, migrations and row-level security.

export { openDatabase, describeUrl, type ConnectOptions, type Database } from './connect.js';
export { migrate, schemaVersion, MIGRATIONS, SCHEMA_LOCK, type Migration, type MigrationResult } from './migrations.js';
export { readModel, recordModel, type HnswBuild } from './model.js';
export { inTransaction } from './transaction.js';
export { withUser, withRole, APP_ROLE, WORKER_ROLE, ADMIN_ROLE } from './with-user.js';
export { PostgresStore, type PostgresStoreOptions } from './store.js';
export { PostgresKeyStore, type PostgresKeyStoreOptions } from './api-keys.js';
export { PostgresJobQueue, type PostgresJobQueueOptions } from './ingest-jobs.js';
export { countChunks, deleteChunks, readLexicalStats, type CountedChunk, type LexicalStats } from './chunk-stats.js';
export { chunkTerms, readAnalysis, recordAnalysis, MAX_LEXEME_BYTES } from './lexical.js';
