// Backup and restore: a store's data as one verified ZIP, readable by any backend.
export { writeBackup, type BackupOptions, type BackupProgress, type BackupWriter } from './write.js';
export { restoreBackup, verifyBackup, BACKUP_ZIP_LIMITS, type RestoreOptions, type RestoreProgress, type RestoreResult } from './restore.js';
export { BACKUP_FORMAT, BACKUP_FORMAT_VERSION, BackupManifestSchema, type BackupCounts, type BackupManifest } from './format.js';
