import type { Config } from '../core/index.js';
import { FlatFileStore } from './flat-file/store.js';
import { PostgresStore } from './postgres/store.js';
import type { Store, StoreWarning } from './store.js';
import { KeyStore, type ApiKeyStore } from './api-keys.js';
import { JournalJobQueue } from './flat-file/ingest-jobs.js';
import type { JobQueue } from './jobs.js';
import { PostgresKeyStore } from './postgres/api-keys.js';
import { openDatabase } from './postgres/connect.js';
import { PostgresJobQueue } from './postgres/ingest-jobs.js';

/** The store the config names: the flat files under `dataDir` (default), or PostgreSQL at `store.url`. */
export async function openStore(config: Config, onWarning: (warning: StoreWarning) => void): Promise<Store> {
  if (config.store.kind === 'postgres') {
    return PostgresStore.open({
      url: config.store.url as string,
      maxConnections: config.store.maxConnections,
      hnsw: { m: config.index.m, efConstruction: config.index.efConstruction },
      lexical: { stopwords: config.search.stopwords, stemming: config.search.stemming },
      limits: config.limits,
      onWarning,
    });
  }
  return FlatFileStore.open({ dataDir: config.dataDir, fsync: config.fsync, lockTimeoutMs: config.lockTimeoutMs, limits: config.limits, onWarning });
}

/**
 * Where the service keeps its API keys, by the store's kind: the data dir's api_keys.json beside the
 * flat files, or the database's table, so every service instance on one database shares them.
 */
export function openKeyStore(store: Store, config: Config): ApiKeyStore {
  return store instanceof PostgresStore ? new PostgresKeyStore(store.database.pool) : new KeyStore(config.dataDir);
}

/** Where ingest jobs wait, by the store's kind: the data dir's journal, or the database's queue shared by every instance. */
export async function openJobQueue(store: Store, config: Config): Promise<JobQueue> {
  return store instanceof PostgresStore ? new PostgresJobQueue(store.database.pool, { staleMs: config.server.jobs.staleMs }) : JournalJobQueue.open(config.dataDir);
}

/**
 * The API keys the config names, without opening the rest of the store: what `memex keys` uses, so
 * it works while servers run (the flat files' key file sits outside the data dir's lock; the
 * database takes any number of clients). Close it when done.
 */
export async function openConfiguredKeys(config: Config): Promise<{ keys: ApiKeyStore; close(): Promise<void> }> {
  if (config.store.kind !== 'postgres') return { keys: new KeyStore(config.dataDir), close: () => Promise.resolve() };
  const database = await openDatabase(config.store.url as string, { maxConnections: 2 });
  return { keys: new PostgresKeyStore(database.pool), close: () => database.close() };
}
