import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { link, open, readFile, rename, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemexError } from '../core/index.js';
import { isNotFound, wrapIo } from './durable.js';

/**
 * One process at a time owns a data dir: the flat-file store keeps caches (counts, line offsets,
 * the session listing) that are only right while nobody else writes. The lock is a file created
 * with O_EXCL holding the owner's pid, host and command. Others wait up to `timeoutMs` (short CLI
 * commands simply take turns) and then get MEMEX_DATA_DIR_LOCKED naming the owner. A lock whose
 * process is gone (killed, crashed) is stale and taken over.
 */
interface LockOwner {
  pid: number;
  hostname: string;
  startedAt: string;
  command: string;
}

const heldInProcess = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Best effort for a process that exits without close(): the lock must not outlive it.
  process.on('exit', () => {
    for (const path of heldInProcess) {
      try {
        const owner = JSON.parse(readFileSync(path, 'utf8')) as LockOwner;
        if (owner.pid === process.pid) unlinkSync(path);
      } catch {
        // already gone
      }
    }
  });
}

/** Whether a process with this pid runs on this machine (one we may not signal still counts). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (cause) {
    return (cause as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readOwner(path: string): Promise<LockOwner | null> {
  try {
    const owner = JSON.parse(await readFile(path, 'utf8')) as Partial<LockOwner>;
    return typeof owner.pid === 'number' ? (owner as LockOwner) : null;
  } catch {
    return null;
  }
}

export class DataDirLock {
  private released = false;

  private constructor(readonly path: string) {}

  static async acquire(path: string, timeoutMs: number): Promise<DataDirLock> {
    installExitHook();
    const deadline = Date.now() + timeoutMs;
    let delay = 10;
    for (;;) {
      if (!heldInProcess.has(path) && (await tryCreate(path))) {
        heldInProcess.add(path);
        return new DataDirLock(path);
      }
      const owner = heldInProcess.has(path) ? null : await readOwner(path);
      if (owner && owner.hostname === hostname() && !isAlive(owner.pid)) {
        await breakStale(path, owner);
        continue;
      }
      if (Date.now() >= deadline) throw lockedError(path, owner, heldInProcess.has(path));
      await sleep(Math.min(delay, Math.max(1, deadline - Date.now())));
      delay = Math.min(delay * 2, 200);
    }
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    heldInProcess.delete(this.path);
    const owner = await readOwner(this.path);
    if (owner?.pid === process.pid) await unlink(this.path).catch(() => undefined);
  }
}

async function tryCreate(path: string): Promise<boolean> {
  const owner: LockOwner = {
    pid: process.pid,
    hostname: hostname(),
    startedAt: new Date().toISOString(),
    command: process.argv.slice(1, 4).join(' ').slice(0, 200),
  };
  // Write the owner to a temp file and hard-link it into place: the lock appears complete or not at all.
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const handle = await open(temp, 'wx');
    try {
      await handle.writeFile(JSON.stringify(owner));
    } finally {
      await handle.close();
    }
    await link(temp, path);
    return true;
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw wrapIo(cause, `cannot create lock file ${path}`);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/**
 * Moves a stale lock aside. Two processes may both find it stale; only one rename wins, and if the
 * loser's rename took a fresh lock its rival had just made, it puts that lock back.
 */
async function breakStale(path: string, seen: LockOwner): Promise<void> {
  const aside = `${path}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch (cause) {
    if (isNotFound(cause)) return;
    throw wrapIo(cause, `cannot remove stale lock ${path}`);
  }
  const moved = await readOwner(aside);
  if (moved && (moved.pid !== seen.pid || moved.startedAt !== seen.startedAt)) {
    await link(aside, path).catch(() => undefined);
  }
  await unlink(aside).catch(() => undefined);
}

function lockedError(path: string, owner: LockOwner | null, sameProcess: boolean): MemexError {
  if (sameProcess) {
    return new MemexError('MEMEX_DATA_DIR_LOCKED', `the data dir is already open in this process (${path}); share one Memex instance or close the other first`, {
      details: { lockFile: path, pid: process.pid },
    });
  }
  const who = owner ? `process ${owner.pid} on ${owner.hostname} (${owner.command || 'unknown command'}), since ${owner.startedAt}` : 'another process';
  return new MemexError(
    'MEMEX_DATA_DIR_LOCKED',
    `the data dir is in use by ${who}. If no Memex process is running, delete ${path} and retry.`,
    { details: { lockFile: path, owner } },
  );
}
