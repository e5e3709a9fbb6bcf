import type { Config } from '../core/index.js';
import { FlatFileStore } from './flat-file/store.js';
import { PostgresStore } from './postgres/store.js';
import type { Store, StoreWarning } from './store.js';

/** The store the config names: the flat files under `dataDir` (default), or PostgreSQL at `store.url`. */
export async function openStore(config: Config, onWarning: (warning: StoreWarning) => void): Promise<Store> {
  if (config.store.kind === 'postgres') {
    return PostgresStore.open({
      url: config.store.url as string,
      maxConnections: config.store.maxConnections,
      hnsw: { m: config.index.m, efConstruction: config.index.efConstruction },
      limits: config.limits,
      onWarning,
    });
  }
  return FlatFileStore.open({ dataDir: config.dataDir, fsync: config.fsync, lockTimeoutMs: config.lockTimeoutMs, limits: config.limits, onWarning });
}
