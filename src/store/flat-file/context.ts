import { randomBytes } from 'node:crypto';
import { readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { MemexError, SessionMetaSchema, parseId, type ContextHistory, type DataDirManifest, type Profile, type SessionId, type SessionMeta, type SessionSummary, type Summary, type UserId } from '../../core/index.js';
import { isNotFound, wrapIo, type Durability } from '../durable.js';
import type { DataDirLock } from '../lock.js';
import { KeyedMutex, type Coalescer } from '../serial.js';
import type { StoreLimits, StoreWarning, UnreadableSession } from '../store.js';
import type { Layout } from './layout.js';
import type { MessageLog } from './message-log.js';
import type { SessionVectors } from './session-vectors.js';

export { oneLine } from '../text.js';

/**
 * How many sessions keep their parsed state (meta, line positions) in memory, least recently used
 * out first. A search hydrates its hits from their sessions' states, so a user with more sessions
 * than this reloads some on every search: at 256, a user of LoCoMo's 272 sessions did (the meta
 * read and checked again, the line positions rebuilt). At 1024, 32 concurrent lexical searches ran
 * 728 and 855 a second against 564 and 628 (two paired runs); hybrid ones, bound by the model's
 * thread on 2 cores, moved within noise. A short session's state is a few KB.
 */
export const SESSION_CACHE_SIZE = 1024;
export { DEFAULT_PAGE } from '../paging.js';
export const TITLE_CHARS = 60;
export const PREVIEW_CHARS = 160;

export interface SessionState {
  meta: SessionMeta;
  /** session_meta.json's mtime after our last read or write: how the listing tells a stale entry. */
  metaMtimeMs: number;
  log: MessageLog;
  /** Writes the latest `meta`; concurrent appends to one session share a write. */
  metaWriter: Coalescer;
  /** Opened (and reconciled) the first time the session's vectors are needed. */
  vectors: SessionVectors | null;
  /** summary.json as last read or written (undefined: not read yet): a window reads it on every call. */
  summary?: Summary | null | undefined;
}

export const IndexEntrySchema = SessionMetaSchema.extend({ metaMtimeMs: z.number() });
export type IndexEntry = z.infer<typeof IndexEntrySchema>;

export interface UserIndex {
  entries: Map<SessionId, IndexEntry>;
  unreadable: Map<string, UnreadableSession>;
  writer: Coalescer;
  /** Set while a write of changes is waiting (see listing.ts `listingChanged`). */
  due: NodeJS.Timeout | null;
}

/**
 * What the parts of the flat-file store share: the data dir, its durability policy and lock, and
 * the caches. The caches stay right because every write in the data dir goes through one store
 * (one FlatFileContext) in one process.
 */
export class FlatFileContext {
  readonly mutex = new KeyedMutex();
  readonly sessionCache = new Map<string, SessionState>();
  /** Each user's notes as last read or written (frozen): a window reads them every turn. */
  readonly notesCache = new Map<UserId, ContextHistory>();
  /** Per user, a counter of changes to their vector rows made through this store (`vectorEpoch`). */
  readonly vectorEpochs = new Map<UserId, number>();
  readonly profiles = new Map<UserId, Profile>();
  readonly indexes = new Map<UserId, Promise<UserIndex>>();
  /** Listings that finished loading. Code inside a session's turn only uses these: it never waits for a load. */
  readonly loaded = new Map<UserId, UserIndex>();
  closed = false;
  /** Appends past their session's turn, still syncing, and listing writes under way: close() waits for them. */
  readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    readonly layout: Layout,
    readonly durability: Durability,
    readonly lock: DataDirLock,
    readonly limits: StoreLimits,
    readonly warn: (warning: StoreWarning) => void,
    public manifest: DataDirManifest,
  ) {}

  assertOpen(): void {
    if (this.closed) throw new MemexError('MEMEX_STORE_CLOSED', 'this store is closed');
  }

  sessionIds(userId: string, sessionId: string): [UserId, SessionId] {
    this.assertOpen();
    return [parseId('user', userId), parseId('session', sessionId)];
  }

  /** Rows of the user changed (see `vectorEpoch`); failed writes bump too, which only costs a sync. */
  bumpVectors(userId: UserId): void {
    this.vectorEpochs.set(userId, (this.vectorEpochs.get(userId) ?? 0) + 1);
  }

  /** Renames a folder into the trash, then removes it: it vanishes at once, whole, even if removal is cut short. */
  async moveToTrash(path: string): Promise<void> {
    await this.durability.mkdirp(this.layout.trash);
    const aside = join(this.layout.trash, `${Date.now()}-${randomBytes(4).toString('hex')}`);
    await rename(path, aside).catch((cause: unknown) => {
      throw wrapIo(cause, `cannot delete ${path}`);
    });
    await rm(aside, { recursive: true, force: true });
  }
}

export function sessionKey(userId: UserId, sessionId: SessionId): string {
  return `${userId}/${sessionId}`;
}

export function nowIso(): string {
  return new Date().toISOString();
}

export function definedOnly<T extends Record<string, unknown>>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as { [K in keyof T]: Exclude<T[K], undefined> };
}

export async function mtimeOf(path: string): Promise<number> {
  return (await stat(path).catch(() => null))?.mtimeMs ?? 0;
}

export async function listDir(path: string): Promise<string[]> {
  try {
    return (await readdir(path)).filter((name) => !name.startsWith('.'));
  } catch (cause) {
    if (isNotFound(cause)) return [];
    throw wrapIo(cause, `cannot list ${path}`);
  }
}

/** Cached records are handed out shared: frozen, so no caller can change the cache under the others. */
export function frozen<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) frozen(inner);
    Object.freeze(value);
  }
  return value;
}

export function summaryOf(meta: SessionMeta): SessionSummary {
  const { v: _v, messagesBytes: _bytes, ...summary } = meta;
  return summary;
}
