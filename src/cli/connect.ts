import { isMemexError, type Config } from '../core/index.js';
import { Memex, type MemexOptions } from '../memex.js';
import { readServerFile } from '../server/announce.js';
import type { MemexApi } from './api.js';
import { HttpMemex } from './http-client.js';

/**
 * How long a CLI command waits for a data dir another process holds, unless `lockTimeoutMs` is
 * set: CLI commands take turns, and one that loads the model holds the lock for seconds.
 */
export const CLI_LOCK_WAIT_MS = 120_000;
/** Each try at the lock is this short, so a server that starts meanwhile is noticed and called instead. */
const TRY_MS = 1_000;
const HEALTH_TIMEOUT_MS = 2_000;

/** The server that owns the data dir, if one is running and answers. */
export async function findServer(dataDir: string, user: string): Promise<HttpMemex | null> {
  const file = await readServerFile(dataDir);
  if (!file) return null;
  try {
    const health = await fetch(new URL('/v1/health', file.url), { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) });
    if (!health.ok) return null;
  } catch {
    return null; // refused or silent: a stale file
  }
  return new HttpMemex(file, user);
}

/**
 * The data dir for a CLI command: the running server's, over HTTP, when `memex serve` owns it;
 * else the library, opened here. While another process holds the lock, it waits (taking turns
 * with other CLI commands) and keeps looking for a server that may have started meanwhile.
 */
export async function openOrConnect(config: Config, options: MemexOptions & { lockWaitMs: number; user: string }): Promise<MemexApi> {
  const { lockWaitMs, user, ...open } = options;
  // A database is shared by design: the CLI works on it directly while servers run.
  if (config.store.kind === 'postgres') return Memex.open(open);
  const deadline = Date.now() + lockWaitMs;
  for (;;) {
    const server = await findServer(config.dataDir, user);
    if (server) return server;
    const left = deadline - Date.now();
    try {
      return await Memex.open({ ...open, config: { ...open.config, lockTimeoutMs: Math.max(0, Math.min(TRY_MS, left)) } });
    } catch (cause) {
      if (!isMemexError(cause, 'MEMEX_DATA_DIR_LOCKED') || Date.now() >= deadline) throw cause;
    }
  }
}
