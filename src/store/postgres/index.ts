// The PostgreSQL backend, step one: the schema, its migrations, row-level security and the
// connection. The Store implementation over it is not written yet; nothing selects this backend.
export { openDatabase, describeUrl, type ConnectOptions, type Database } from './connect.js';
export { migrate, schemaVersion, MIGRATIONS, SCHEMA_LOCK, type Migration, type MigrationResult } from './migrations.js';
export { readModel, recordModel, type HnswBuild } from './model.js';
export { inTransaction } from './transaction.js';
export { withUser, withRole, APP_ROLE, WORKER_ROLE, ADMIN_ROLE } from './with-user.js';
export { PostgresKeyStore, type PostgresKeyStoreOptions } from './api-keys.js';
export { PostgresJobQueue, type PostgresJobQueueOptions } from './ingest-jobs.js';
